"""VAEs on Sort-of-CLEVR with a conv or CoordConv encoder and decoder (paper section 5).

Nothing is here yet: this package will hold the models and their training loop.
"""
