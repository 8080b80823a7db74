"""The worlds the benchmarks run in.

Not-so-CLEVR (the paper's toy data, section 3) lives in `not_so_clevr`; Sort-of-CLEVR
(generator and scene parser), MNIST-scatter and the Atari environment factory will
live beside it.
"""
