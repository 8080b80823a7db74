"""torchvision Faster R-CNN on MNIST-scatter with CoordConv in the backbone and heads (paper section 5).

Nothing is here yet: this package will hold the backbone, the heads and the training run.
"""
