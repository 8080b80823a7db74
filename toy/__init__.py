"""The paper's toy coordinate tasks on Not-so-CLEVR (Liu et al. 2018, sections 3 and 4).

`toy.classification`: coordinates in, a softmax over the 4,096 pixels out; `toy.rendering`:
coordinates in, the 9x9 square out; `toy.regression`: the one-hot image in, coordinates out.
The `toy` suite runs them for conv and CoordConv on both splits.
"""

from cc_bench.registry import register_benchmark
from cc_bench.suites import SMOKE_DESCRIPTION, Suite, SuiteEntry, extend_suite, register_suite
from cc_bench.toy.configs import ClassificationConfig, RegressionConfig, RenderingConfig

# Which way each summary metric is better: the report judges only what is declared here.
# `wall_s` gets no verdict: the sides train different budgets (per-conv epochs), usually on a
# shared CPU, so the faster side is mostly the one that trained less.
_COMMON = {
    "train_loss": "lower",
    "test_loss": "lower",
    "params": "neither",
    "wall_s": "neither",
    "time_to_perfect_s": "lower",
}
# Curves against epochs: the training loop logs once per epoch (`step` = epochs done), and
# both sides of a group see the same training split, so an epoch is the same number of
# examples seen on either side (batch sizes may differ). Wall seconds would not be shared.
_CURVES = {"curve_x": "step", "curve_x_label": "epochs (passes over the training split)"}
_ACC = {"train_acc": "higher", "test_acc": "higher", **_COMMON}

register_benchmark(
    "toy.classification",
    ClassificationConfig,
    run="cc_bench.toy.classification:run",
    description="coordinates (i, j) in, a softmax over the 64x64 pixels out (paper section 4)",
    metrics=_ACC,
    headline=("test_acc", "train_acc"),
    curves=("test/acc", "test/loss"),
    **_CURVES,
)
register_benchmark(
    "toy.rendering",
    RenderingConfig,
    run="cc_bench.toy.rendering:run",
    description="coordinates (i, j) in, the 9x9 square around them out, scored by IoU (section 4)",
    metrics={"train_iou": "higher", "test_iou": "higher", **_COMMON},
    headline=("test_iou", "train_iou"),
    curves=("test/iou", "test/loss"),
    **_CURVES,
)
register_benchmark(
    "toy.regression",
    RegressionConfig,
    run="cc_bench.toy.regression:run",
    description="a one-hot image in, its coordinates (i, j) out, mean squared error (section 4)",
    metrics={**_ACC, "test_mse": "lower", "test_mean_abs_err_px": "lower"},
    headline=("test_acc", "test_mean_abs_err_px"),
    curves=("test/acc", "test/mean_abs_err_px"),
    **_CURVES,
)

_SPLITS = {"split": ["uniform", "quadrant"]}
_TINY = {"epochs": 2, "max_train_examples": 32}
_TINY_IMAGE = {**_TINY, "widths": (4, 4), "deconv_width": 1}

register_suite(
    Suite(
        "toy",
        "the paper's toy tasks (classification, rendering, regression): conv vs CoordConv, "
        "both splits, 3 seeds: about 15 minutes on a 2-core CPU",
        (
            SuiteEntry("toy.classification", grid=_SPLITS, seeds=3),
            SuiteEntry("toy.rendering", grid=_SPLITS, seeds=3),
            SuiteEntry("toy.regression", grid=_SPLITS, seeds=3),
        ),
        finish="cc_bench.toy.table:write_table",
    )
)
extend_suite(
    "smoke",
    SuiteEntry("toy.classification", seeds=1, fixed=_TINY_IMAGE),
    SuiteEntry("toy.rendering", seeds=1, fixed=_TINY_IMAGE),
    SuiteEntry("toy.regression", seeds=1, fixed=_TINY),
    description=SMOKE_DESCRIPTION,
)
