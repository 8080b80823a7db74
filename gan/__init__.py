"""GANs on Sort-of-CLEVR with a conv or CoordConv generator and discriminator (paper section 5).

Nothing is here yet: this package will hold the DCGAN-like models and their training loop.
"""
