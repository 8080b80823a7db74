"""Pictures of the toy tasks a person can read at a glance (paper figures 5, 9 and 10)."""

from __future__ import annotations

from typing import Any

import numpy as np

ZOOM = 7  # pixels either side of the target in the zoomed panels


def _figure(rows: int, cols: int, size: float = 2.0) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, cols, figsize=(cols * size, rows * size), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, axes


def _zoom(image: np.ndarray, i: int, j: int) -> np.ndarray:
    padded = np.pad(image, ZOOM, constant_values=np.nan)
    return padded[i : i + 2 * ZOOM + 1, j : j + 2 * ZOOM + 1]


def classification_figure(coords: np.ndarray, logits: np.ndarray, title: str) -> Any:
    """Test examples, one row each: the softmax over the canvas with the target (circle) and the
    prediction (cross), then the logits and the softmax zoomed around the target.

    Args:
        coords: (K, 2) true centres; logits: (K, 64, 64).
    """
    fig, axes = _figure(len(coords), 3)
    for row, ((i, j), logit) in enumerate(zip(coords, logits, strict=True)):
        prob = np.exp(logit - logit.max())
        prob /= prob.sum()
        pi, pj = np.unravel_index(prob.argmax(), prob.shape)
        axes[row, 0].imshow(prob, cmap="magma")
        axes[row, 0].scatter([j], [i], s=60, facecolors="none", edgecolors="cyan")
        axes[row, 0].scatter([pj], [pi], s=40, marker="x", c="lime")
        axes[row, 1].imshow(_zoom(logit, i, j), cmap="viridis")
        axes[row, 2].imshow(_zoom(prob, i, j), cmap="magma", vmin=0)
        for ax in axes[row, 1:]:
            ax.scatter([ZOOM], [ZOOM], s=60, facecolors="none", edgecolors="cyan")
        ok = "right" if (pi, pj) == (i, j) else f"predicted ({pi}, {pj})"
        axes[row, 0].set_ylabel(f"({i}, {j})\n{ok}", fontsize=8)
    for ax, name in zip(axes[0], ("softmax", "logits (zoom)", "softmax (zoom)"), strict=True):
        ax.set_title(name, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def rendering_figure(coords: np.ndarray, targets: np.ndarray, probs: np.ndarray, title: str) -> Any:
    """Test examples, one row each: the true square, the predicted probabilities, and the
    thresholded prediction (0.5) with its IoU.

    Args:
        coords: (K, 2); targets, probs: (K, 64, 64).
    """
    fig, axes = _figure(len(coords), 3)
    for row, ((i, j), target, prob) in enumerate(zip(coords, targets, probs, strict=True)):
        pred = prob > 0.5
        union = np.logical_or(pred, target > 0.5).sum()
        iou = np.logical_and(pred, target > 0.5).sum() / max(union, 1)
        axes[row, 0].imshow(target, cmap="gray", vmin=0, vmax=1)
        axes[row, 1].imshow(prob, cmap="magma", vmin=0, vmax=1)
        axes[row, 2].imshow(pred, cmap="gray", vmin=0, vmax=1)
        axes[row, 0].set_ylabel(f"({i}, {j})", fontsize=8)
        axes[row, 2].set_xlabel(f"IoU {iou:.2f}", fontsize=8)
    for ax, name in zip(axes[0], ("target", "sigmoid", "prediction > 0.5"), strict=True):
        ax.set_title(name, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def regression_figure(
    train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], title: str
) -> Any:
    """Predicted points against the true ones over the canvas, train and test in two colours.

    Args:
        train, test: (true (N, 2), predicted (N, 2)) centres in pixels.
    """
    fig, axes = _figure(1, 2, size=4.0)
    for ax, (name, (true, pred), colour) in zip(
        axes[0], (("train", train, "#4c72b0"), ("test", test, "#dd8452")), strict=True
    ):
        ax.scatter(true[:, 1], true[:, 0], s=2, c="lightgray", label="true")
        ax.scatter(pred[:, 1], pred[:, 0], s=2, c=colour, label="predicted")
        ax.set_xlim(-1, 64)
        ax.set_ylim(64, -1)
        ax.set_aspect("equal")
        ax.set_title(f"{name}: predicted vs true (j across, i down)", fontsize=9)
        ax.legend(loc="upper left", fontsize=7, markerscale=4)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
