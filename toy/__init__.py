"""The paper's toy coordinate tasks on Not-so-CLEVR (Liu et al. 2018, sections 3 and 4).

`toy.classification`: coordinates in, a softmax over the 4,096 pixels out. Rendering and
regression will join it. The `toy` suite runs them for conv and CoordConv on both splits.
"""

from cc_bench.registry import register_benchmark
from cc_bench.suites import SMOKE_DESCRIPTION, Suite, SuiteEntry, extend_suite, register_suite
from cc_bench.toy.configs import ClassificationConfig

register_benchmark(
    "toy.classification",
    ClassificationConfig,
    run="cc_bench.toy.classification:run",
    description="coordinates (i, j) in, a softmax over the 64x64 pixels out (paper section 4)",
)

register_suite(
    Suite(
        "toy",
        "the paper's toy coordinate tasks: conv vs CoordConv, uniform and quadrant splits",
        (SuiteEntry("toy.classification", grid={"split": ["uniform", "quadrant"]}, seeds=3),),
    )
)
extend_suite(
    "smoke",
    SuiteEntry(
        "toy.classification",
        seeds=1,
        fixed={"epochs": 2, "max_train_examples": 32, "widths": (4, 4), "deconv_width": 1},
    ),
    description=SMOKE_DESCRIPTION,
)
