"""The paper's toy coordinate tasks on Not-so-CLEVR (Liu et al. 2018, sections 3 and 4).

`toy.classification`: coordinates in, a softmax over the 4,096 pixels out. Rendering and
regression will join it.
"""

from cc_bench.registry import register_benchmark
from cc_bench.toy.configs import ClassificationConfig

register_benchmark(
    "toy.classification",
    ClassificationConfig,
    run="cc_bench.toy.classification:run",
    description="coordinates (i, j) in, a softmax over the 64x64 pixels out (paper section 4)",
)
