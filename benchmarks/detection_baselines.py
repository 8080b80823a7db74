"""What the detection measures give for nothing: untrained detectors and chance boxes.

Scores `det-laptop`'s test canvases (500, from its data seed) the way `detection.mnist_scatter`
scores them after every epoch (`cc_bench.detection.metrics`), with
- `untrained`: the detector as a run builds it before its first step (seeded, the data
  loaded, then the model built), conv and CoordConv, for each seed;
- `chance, N boxes`: on each canvas, N true boxes drawn at random from the other test
  canvases (the data's sizes and places, unrelated to this canvas), all scoring 1; the first
  10 of them are the "proposals" that `rpn_mean_iou` scores.

A trained detector is only worth reading against these rows (docs/detection.md).

    python benchmarks/detection_baselines.py [--seeds 3] [--boxes 10 100] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics

import torch

from cc_bench.arguments import int_at_least
from cc_bench.detection import LAPTOP_BUDGET
from cc_bench.detection.configs import DetectionConfig
from cc_bench.detection.metrics import DetectionScores
from cc_bench.detection.mnist_scatter import build_model, evaluate, load_data, targets_for
from cc_bench.envs.mnist_scatter import MnistScatter
from cc_bench.machine import cpu_name
from cc_bench.runtime import seed_everything

COLUMNS = (
    "rpn_mean_iou",
    "mean_iou",
    "recall_50",
    "precision_50",
    "detections_per_image",
    "map_50",
)


def untrained(cfg: DetectionConfig) -> dict[str, float]:
    """The test scores of the detector `cfg` builds, before any training step."""
    seed_everything(cfg.seed)  # as a run: seeded, data loaded, then the model built
    train, test = load_data(cfg, "train"), load_data(cfg, "test")
    model = build_model(cfg, float(train.images.mean()), float(train.images.std()))
    scores, _ = evaluate(model, test, cfg, torch.device("cpu"))
    return scores


def chance(
    test: MnistScatter, cfg: DetectionConfig, n_boxes: int, seed: int = 0
) -> dict[str, float]:
    """The scores on `test` of `n_boxes` boxes a canvas, each drawn at random (with
    replacement) from the true boxes of the other canvases, all scoring 1."""
    owner = torch.cat([torch.full((len(b),), k) for k, b in enumerate(test.boxes)])
    pool = torch.cat(test.boxes).float()
    if len(set(owner.tolist())) < 2:
        raise ValueError("chance boxes need true boxes on at least two canvases")
    generator = torch.Generator().manual_seed(seed)
    scores = DetectionScores(cfg.score_threshold, cfg.rpn_iou_top)
    for k in range(len(test)):
        others = pool[owner != k]
        drawn = others[torch.randint(len(others), (n_boxes,), generator=generator)]
        pred = {
            "boxes": drawn,
            "scores": torch.ones(n_boxes),
            "labels": torch.ones(n_boxes, dtype=torch.int64),
        }
        truth = targets_for(test, [k], cfg.num_classes, torch.device("cpu"))
        scores.update([pred], truth, [drawn])
    return scores.compute()


def _cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ({min(values):.3f}..{max(values):.3f})"


def table(seeds: int, boxes: list[int]) -> str:
    """A Markdown table: a row per baseline, the mean and range over seeds where seeded."""
    base = DetectionConfig(**LAPTOP_BUDGET)
    test = load_data(base, "test")
    digits = sum(len(b) for b in test.boxes)
    rows = [
        f"{cpu_name()}, torch {torch.__version__}, torch threads {torch.get_num_threads()}: "
        f"det-laptop's {len(test)} test canvases ({digits} digits), score threshold "
        f"{base.score_threshold}",
        "",
        "| | " + " | ".join(COLUMNS) + " |",
        "|---|" + "---|" * len(COLUMNS),
    ]
    for conv in ("conv", "coordconv"):
        runs = [
            untrained(DetectionConfig(**LAPTOP_BUDGET, conv=conv, seed=s)) for s in range(seeds)
        ]
        label = f"untrained, {conv}" + (
            f" (seeds 0-{seeds - 1}: mean (min..max))" if seeds > 1 else ", seed 0"
        )
        rows.append(
            f"| {label} | " + " | ".join(_cell([r[c] for r in runs]) for c in COLUMNS) + " |"
        )
    for n in boxes:
        scores = chance(test, base, n)
        rows.append(
            f"| chance, {n} boxes a canvas | "
            + " | ".join(_cell([scores[c]]) for c in COLUMNS)
            + " |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int_at_least(1), default=3, help="untrained seeds")
    parser.add_argument(
        "--boxes", type=int_at_least(1), nargs="+", default=[10, 100], help="chance boxes a canvas"
    )
    parser.add_argument(
        "--threads", type=int_at_least(0), default=1, help="torch threads (0: torch's)"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(table(args.seeds, args.boxes))


if __name__ == "__main__":
    main()
