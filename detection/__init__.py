"""torchvision Faster R-CNN on MNIST-scatter with CoordConv in the backbone and heads (section 5).

`detection.mnist_scatter` trains the detector on 64x64 crops of canvases of scattered MNIST
digits and scores it by the official measure (mean IoU of the RPN's proposals after NMS),
the detections' mean IoU, precision and recall at IoU 0.5, and COCO mAP. Suites:
`det-smoke` (seconds, for tests; also part of `smoke`), `det-laptop` (conv vs CoordConv, 3
seeds, about 30 minutes on a 2-core CPU) and `det-paper` (the official 9,000 / 1,000
canvases, for a GPU cluster).
"""

from cc_bench.detection.configs import DetectionConfig
from cc_bench.registry import register_benchmark
from cc_bench.suites import (
    PAPER_DESCRIPTION,
    SMOKE_DESCRIPTION,
    Suite,
    SuiteEntry,
    extend_suite,
    register_suite,
)

register_benchmark(
    "detection.mnist_scatter",
    DetectionConfig,
    run="cc_bench.detection.mnist_scatter:run",
    description="torchvision Faster R-CNN on scattered MNIST digits: mean IoU and COCO mAP (section 5)",
    metrics={
        "rpn_mean_iou": "higher",
        "mean_iou": "higher",
        "recall_50": "higher",
        "precision_50": "higher",
        "detections_per_image": "neither",
        "map": "higher",
        "map_50": "higher",
        "train_loss": "lower",
        "images_per_s": "higher",
        "wall_s": "lower",
        "params": "neither",
    },
    headline=("rpn_mean_iou", "mean_iou", "map_50"),
    curve_x="step",  # logged once an epoch, at step = epochs done
    curve_x_label="epoch",
    curves=("test/rpn_mean_iou", "test/mean_iou", "test/map_50", "test/map", "train/loss"),
)

# A few seconds a run: a handful of canvases, one epoch, small proposal counts.
SMOKE_BUDGET = {
    "n_train": 16,
    "n_test": 8,
    "epochs": 1,
    "batch_size": 8,
    "warmup_steps": 0,
    "torch_threads": 1,
}
# Sized to about 30 minutes for the 6 runs on an idle 2-core CPU (measured with --workers 2:
# 21 min 44 s on a Zen 4 VM, binary canvases; 25 min 52 s on a Zen 3 VM, earlier digits). The earlier 1,500 x 5 (7,500 training images a run, 300 test canvases) took about 11 minutes
# idle and its curves still rose at epoch 5: 2,400 x 8 (19,200 images) and 500 test
# canvases are about 2.7 times the work. One torch thread: two threads on a busy CPU ran 5-7x
# slower (docs/detection.md).
LAPTOP_BUDGET = {"n_train": 2400, "n_test": 500, "epochs": 8, "torch_threads": 1}

register_suite(
    Suite(
        "det-smoke",
        "detection.mnist_scatter on a tiny budget, conv and CoordConv, one seed (seconds)",
        (SuiteEntry("detection.mnist_scatter", seeds=1, fixed=SMOKE_BUDGET),),
    )
)
register_suite(
    Suite(
        "det-laptop",
        "detection.mnist_scatter, conv vs CoordConv, 3 seeds, a reduced budget: "
        "about 22 minutes on an idle 2-core CPU (Zen 4), two runs at a time",
        (SuiteEntry("detection.mnist_scatter", seeds=3, fixed=LAPTOP_BUDGET),),
    )
)
_PAPER = register_suite(
    Suite(
        "det-paper",
        "detection.mnist_scatter at the official size (9,000 / 1,000 canvases), conv vs "
        "CoordConv, 5 seeds, 24 epochs: for a GPU cluster",
        (
            SuiteEntry(
                "detection.mnist_scatter",
                seeds=5,
                fixed={"n_train": 9000, "n_test": 1000, "epochs": 24},
            ),
        ),
    )
)
extend_suite(
    "smoke",
    SuiteEntry("detection.mnist_scatter", seeds=1, fixed=SMOKE_BUDGET),
    description=SMOKE_DESCRIPTION,
)
extend_suite("paper", *_PAPER.entries, description=PAPER_DESCRIPTION)
