"""The worlds the benchmarks run in.

`not_so_clevr`: the paper's toy data (section 3); `sort_of_clevr`: the GAN and VAE scenes,
their parser and the interpolation and coverage measures (section 5); `mnist_scatter`: MNIST
digits scattered on a canvas, for detection (section 5); `atari`: the ALE / stable-baselines3
environment factory (section 6). Nothing heavy is imported here.
"""
