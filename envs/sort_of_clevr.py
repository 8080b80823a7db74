"""Sort-of-CLEVR: the scenes of the paper's GAN and VAE experiments (Liu et al. 2018, section 5).

A white 64x64 canvas holds two objects, one red and one blue, each a circle or a square
(p = 0.5) of radius or half-side 10 px, never overlapping, fully inside the canvas: the
official generator's defaults (Liu et al. 2018's released code). This module holds the
world and the instruments that turn the paper's pictures into numbers:

- `generate_scenes`: the images and what is in them, vectorised, seeded, cached on disk.
- `parse_scenes`: reads images (the data's or a model's samples) back into objects, robust
  to noise and soft edges, and says whether each scene is well formed (a blob of a colour
  off the palette makes it not).
- `interpolation_measures`: tracks objects along latent interpolations: how far they move per
  frame and overall, and how often one jumps ("teleports") or appears or vanishes, by the
  issue's plain rule and by a robust one (between valid frames, relative to the object's own
  speed) that a generator ignoring z cannot win.
- `position_coverage`: how the objects' centres spread over the canvas against the data's.
- `attribute_frequencies`: the shares of each shape and colour.
- `sample_measures`: all of a model's sample scores at once (valid scenes, shares, coverage).

Coordinates follow the layers' convention: a centre is (i, j), i down the rows, j along the
columns, in pixels. Objects are at least `GAP_PX` apart (their bounding boxes never touch), a
little stricter than the official generator's centre distance, so every object is its own
connected component.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

PALETTE: Mapping[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "blue": (0, 0, 255),
    "green": (0, 255, 0),
    "orange": (255, 165, 0),
    "yellow": (255, 255, 0),
    "gray": (128, 128, 128),
}
"""RGB of each colour an object may have; the background is white."""

BACKGROUND = (255, 255, 255)
"""The canvas colour."""

SHAPES = ("circle", "square")
"""The shapes `generate_scenes` can draw."""

GAP_PX = 2
"""Least number of background pixels between two objects' bounding boxes."""

SQUARE_FILL = (1.0 + np.pi / 4) / 2
"""Fill ratio of its bounding box above which a blob is a square, below it a circle (a disc
fills pi/4 = 0.79 of its box, a square all of it); for small objects see `square_fill`."""

_CACHE_VERSION = 1  # bump when the drawing changes, so stale caches are not read


@dataclass(frozen=True)
class SceneObject:
    """One object of a scene: what the generator drew, or what the parser found."""

    color: str
    """A name in `PALETTE`."""
    shape: str
    """`circle` or `square`."""
    center: tuple[float, float]
    """(i, j) in pixels: i the row, j the column."""
    area: float
    """Pixels covered. The generator's count is exact; the parser counts the blob after its
    3x3 opening, which takes a disc's four one-pixel tips (317 drawn, 313 parsed at radius
    10) and leaves a square whole."""


@dataclass(frozen=True)
class ParsedScene:
    """What `parse_scenes` read from one image."""

    objects: list[SceneObject]
    """Every blob found (colour components of at least `min_area` pixels), largest first."""
    valid: bool
    """The scene is well formed: the expected number of objects, each colour at most once, each
    blob a clean circle or square of plausible size, and no stray coloured pixels to speak of."""
    problem: str = ""
    """Why the scene is not valid ("" when it is), e.g. "3 objects" or "red: not a clean shape"."""
    stray_px: int = 0
    """Coloured pixels in specks: connected pieces smaller than `min_area`."""
    other_px: int = 0
    """Pixels of no palette colour (farther than `max_color_dist` from every colour and every
    blend of a colour with the background) in blobs that survive a 3x3 opening."""
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)
    """Each object's bounding box (i0, j0, i1, j1), stops exclusive, in `objects`' order."""
    clean: list[bool] = field(default_factory=list)
    """Whether each object is a clean shape of plausible size, in `objects`' order."""


# -- the generator --------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where generated data is cached: $CC_BENCH_CACHE, else ~/.cache/cc_bench."""
    root = os.environ.get("CC_BENCH_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "cc_bench"


def _check_params(
    size: int, n_objects: int, colors: Sequence[str], shapes: Sequence[str], object_size: int
) -> None:
    unknown = [c for c in colors if c not in PALETTE]
    if unknown:
        raise ValueError(f"unknown colours {unknown}; known: {', '.join(PALETTE)}")
    if len(set(colors)) != len(colors) or n_objects > len(colors):
        raise ValueError(
            f"n_objects={n_objects} needs as many distinct colours, got colors={tuple(colors)}"
        )
    bad = [s for s in shapes if s not in SHAPES]
    if bad or not shapes:
        raise ValueError(f"invalid shapes {tuple(shapes)}; allowed: {', '.join(SHAPES)}")
    free = size - 2 * object_size
    if object_size < 1 or free < 1:
        raise ValueError(f"object_size={object_size} does not fit a {size}x{size} canvas")


def _sample_layout(
    rng: np.random.Generator, n: int, size: int, n_objects: int, r: int
) -> np.ndarray:
    """(n, n_objects, 2) integer centres, objects inside the canvas and `GAP_PX` apart."""
    low, high = r, size - 1 - r  # inclusive range of a centre
    min_sep = 2 * r + 1 + GAP_PX  # Chebyshev distance of two centres whose boxes keep the gap
    centres = rng.integers(low, high + 1, size=(n, n_objects, 2))
    for _ in range(10_000):
        d = np.abs(centres[:, :, None, :] - centres[:, None, :, :]).max(-1)  # (n, k, k)
        d[:, np.arange(n_objects), np.arange(n_objects)] = min_sep
        bad = (d < min_sep).any(axis=(1, 2))  # (n,)
        if not bad.any():
            return centres
        centres[bad] = rng.integers(low, high + 1, size=(int(bad.sum()), n_objects, 2))
    raise ValueError(
        f"cannot place {n_objects} objects of size {r} apart on a {size}x{size} canvas"
    )


def _render(
    centres: np.ndarray, color_idx: np.ndarray, shape_idx: np.ndarray, size: int, r: int
) -> tuple[np.ndarray, np.ndarray]:
    """Draw the scenes; returns images (n, size, size, 3) uint8 and areas (n, k)."""
    n, k, _ = centres.shape
    palette = np.array(list(PALETTE.values()), dtype=np.uint8)  # (P, 3)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    areas = np.zeros((n, k), dtype=np.int64)
    axis = np.arange(size)
    chunk = 2048
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        canvas = np.full((stop - start, size, size, 3), BACKGROUND, dtype=np.uint8)
        for o in range(k):
            di = axis[None, :, None] - centres[start:stop, o, 0, None, None]  # (b, size, 1)
            dj = axis[None, None, :] - centres[start:stop, o, 1, None, None]  # (b, 1, size)
            disc = di * di + dj * dj <= r * r  # (b, size, size)
            box = (np.abs(di) <= r) & (np.abs(dj) <= r)
            square = (shape_idx[start:stop, o] == SHAPES.index("square"))[:, None, None]
            mask = np.where(square, box, disc)
            canvas[mask] = palette[np.repeat(color_idx[start:stop, o], mask.sum((1, 2)))]
            areas[start:stop, o] = mask.sum((1, 2))
        images[start:stop] = canvas
    return images, areas


def generate_scenes(
    n: int,
    seed: int,
    *,
    size: int = 64,
    n_objects: int = 2,
    colors: Sequence[str] = ("red", "blue"),
    shapes: Sequence[str] = ("circle", "square"),
    object_size: int = 10,
    cache: bool = True,
) -> tuple[np.ndarray, list[list[SceneObject]]]:
    """`n` seeded Sort-of-CLEVR scenes: images (n, size, size, 3) uint8 RGB and their objects.

    Each scene has `n_objects` objects of distinct colours drawn from `colors` (all of them,
    in random order, when there are as many colours as objects), each a shape from `shapes`
    with equal probability, of radius (circle) or half-side (square) `object_size`, inside
    the canvas and never touching. The same arguments give the same scenes; with `cache`
    they are kept under `cache_dir()` and read back from there the next time.

    Args:
        n: number of scenes.
        seed: the random seed.
        cache: read and write the on-disk cache (50,000 scenes: 600 MB uncompressed).
    """
    _check_params(size, n_objects, colors, shapes, object_size)
    params = {
        "n": n,
        "seed": seed,
        "size": size,
        "n_objects": n_objects,
        "colors": list(colors),
        "shapes": list(shapes),
        "object_size": object_size,
        "version": _CACHE_VERSION,
    }
    key = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / "sort_of_clevr" / f"{key}.npz"
    arrays = None
    if cache and path.exists():
        try:
            with np.load(path) as f:
                arrays = {
                    name: f[name] for name in ("images", "centres", "colors", "shapes", "areas")
                }
        except Exception:  # a damaged, half-written or stale file (any error): generate again
            arrays = None
    if arrays is None:
        rng = np.random.default_rng(seed)
        centres = _sample_layout(rng, n, size, n_objects, object_size)
        names = list(PALETTE)
        allowed = np.array([names.index(c) for c in colors])
        order = rng.permuted(np.tile(np.arange(len(colors)), (n, 1)), axis=1)[:, :n_objects]
        color_idx = allowed[order]  # (n, k)
        shape_names = np.array([SHAPES.index(s) for s in shapes])
        shape_idx = shape_names[rng.integers(0, len(shapes), size=(n, n_objects))]  # (n, k)
        images, areas = _render(centres, color_idx, shape_idx, size, object_size)
        arrays = {
            "images": images,
            "centres": centres,
            "colors": color_idx,
            "shapes": shape_idx,
            "areas": areas,
        }
        if cache:
            _save_atomic(arrays, path)
    names = list(PALETTE)
    scenes = [
        [
            SceneObject(names[c], SHAPES[s], (float(ci), float(cj)), float(a))
            for (ci, cj), c, s, a in zip(cs, cols, shs, ars, strict=True)
        ]
        for cs, cols, shs, ars in zip(
            arrays["centres"].tolist(),
            arrays["colors"].tolist(),
            arrays["shapes"].tolist(),
            arrays["areas"].tolist(),
            strict=True,
        )
    ]
    return arrays["images"], scenes


def _scene_key(scene: Sequence[SceneObject]) -> tuple[tuple[str, str, tuple[float, float]], ...]:
    """What makes two generated scenes the same image: their objects' colours, shapes and
    centres (the generator's sizes are fixed)."""
    return tuple(sorted((o.color, o.shape, o.center) for o in scene))


def train_test_scenes(
    n_train: int, n_test: int, seed: int, **kwargs: Any
) -> tuple[np.ndarray, list[list[SceneObject]]]:
    """`n_train` then `n_test` scenes, as `generate_scenes(n_train + n_test, seed)` draws them,
    except that a test scene equal to a training scene (a few in a thousand at 50,000
    training scenes: the layouts are finite) is replaced by a fresh one that is not, so the
    held-out scenes are never seen in training. `kwargs` go to `generate_scenes`."""
    images, scenes = generate_scenes(n_train + n_test, seed, **kwargs)
    seen = {_scene_key(sc) for sc in scenes[:n_train]}
    repeats = [i for i in range(n_train, n_train + n_test) if _scene_key(scenes[i]) in seen]
    if not repeats:
        return images, scenes
    spares: list[tuple[np.ndarray, list[SceneObject]]] = []
    extra_seed = seed
    while len(spares) < len(repeats):  # further seeded draws (cached too), a few spare
        extra_seed = (extra_seed + 1) % (2**32)
        more = generate_scenes(2 * len(repeats) + 8, extra_seed, **kwargs)
        spares += [(im, sc) for im, sc in zip(*more, strict=True) if _scene_key(sc) not in seen]
    images = images.copy()  # not the cached array
    for i, (image, scene) in zip(repeats, spares, strict=False):
        images[i], scenes[i] = image, scene
    return images, scenes


def _save_atomic(arrays: Mapping[str, np.ndarray], path: Path) -> None:
    """Write the cache file whole or not at all; an unwritable cache only costs regenerating."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):  # nothing to remove, or no folder to hold it
            tmp.unlink()
        print(f"warning: Sort-of-CLEVR scenes not cached ({exc})", file=sys.stderr)


# -- the parser -----------------------------------------------------------------------------


def to_uint8_images(images: Any) -> np.ndarray:
    """Images as uint8 (n, H, W, 3): from uint8 (n, H, W, 3), or from floats in [-1, 1] laid
    out (n, 3, H, W) (a model's output; a torch tensor is fine) or (n, H, W, 3)."""
    if hasattr(images, "detach"):  # a torch tensor (so torch is imported); uint8 stays uint8
        import torch

        images = images.detach().cpu()
        images = (images if images.dtype == torch.uint8 else images.float()).numpy()
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be (n, H, W, 3) or (n, 3, H, W), got {images.shape}")
    if images.dtype == np.uint8:
        if images.shape[-1] != 3:
            raise ValueError(f"uint8 images must be (n, H, W, 3), got {images.shape}")
        return images
    if images.shape[1] == 3 and images.shape[-1] != 3:
        images = images.transpose(0, 2, 3, 1)
    return np.clip((images + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)


def _label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """Label 8-connected components of each image of a (n, H, W) mask, never across images."""
    from scipy import ndimage

    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = True
    return ndimage.label(mask, structure=structure)


MAX_COLOR_DIST = 120.0
"""Default largest RGB distance (0..255 a channel) of a pixel from the nearest palette colour
or blend of one with the background. Soft edges lie on those blends, so blur passes, and
noise of 25 a channel almost never strays 120 away; black (255 away), green (312), yellow
(180), purple (156, halfway between red and blue) and olive (152) are other colours."""


def _palette_distance(x: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """Distance of each pixel of `x` (..., 3) from the nearest segment between the background
    and one of `colors` (P, 3): the colours, the background and their blends (soft edges)."""
    white = np.array(BACKGROUND, dtype=np.float32)
    rel = x - white  # (..., 3)
    best = None
    for color in colors:
        axis = color - white  # (3,)
        t = np.clip(rel @ axis / float(axis @ axis), 0.0, 1.0)  # (...,)
        d = ((rel - t[..., None] * axis) ** 2).sum(-1)  # (...,)
        best = d if best is None else np.minimum(best, d)
    return np.sqrt(best)


@functools.lru_cache(maxsize=32)
def square_fill(object_size: int) -> float:
    """The fill ratio above which `parse_scenes` reads a blob of this size as a square.

    `SQUARE_FILL`, halfway between a disc's and a square's fill, where a drawn disc of radius
    `object_size` still fills less than that after the parser's 3x3 opening (which trims its
    one-pixel tips, shrinking its box): radius 7 and up. Below, the drawn disc fills more
    (0.90 at radius 6, 0.95 at 5) and the cut is halfway between its fill and the square's.
    Raises ValueError where the two cannot be told apart: radius 5 and below but 4 (at 3 the
    opening leaves a drawn disc square, at 1 nothing at all).
    """
    from scipy import ndimage

    axis = np.arange(-object_size - 2, object_size + 3)
    di, dj = axis[:, None], axis[None, :]
    fills = []
    for mask in (di * di + dj * dj <= object_size**2, np.maximum(abs(di), abs(dj)) <= object_size):
        opened = ndimage.binary_opening(mask, structure=np.ones((3, 3), dtype=bool))
        rows, cols = np.nonzero(opened)
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1) if len(rows) else 0
        fills.append(opened.sum() / box if box else 1.0)  # nothing left: no shape to tell
    disc, square = fills
    if square - disc < 0.05:
        raise ValueError(
            f"object_size={object_size} is too small to tell circles from squares: after a "
            f"3x3 opening a drawn disc fills {disc:.2f} of its box, a square {square:.2f}"
        )
    return SQUARE_FILL if disc < SQUARE_FILL else (disc + square) / 2


def parse_scenes(
    images: Any,
    *,
    colors: Sequence[str] = ("red", "blue"),
    n_objects: int = 2,
    object_size: int = 10,
    min_area: int = 8,
    max_stray_px: int = 50,
    max_color_dist: float = MAX_COLOR_DIST,
) -> list[ParsedScene]:
    """Read images back into scenes: each object's colour, shape, centre and area.

    A pixel farther than `max_color_dist` from every colour of `colors` and every blend of one
    with the background (a soft edge) is of another colour: it belongs to no object. Every
    other pixel goes to the nearest of the background and `colors`; after a 3x3 opening (which
    strips specks and one-pixel threads), each colour's 8-connected components of at least
    `min_area` pixels are the objects; a component's shape is a square
    when it fills more than `square_fill(object_size)` of its bounding box (`SQUARE_FILL` for
    radius 7 and up), else a circle; its centre is its pixels' mean (i, j).

    A scene is `valid` when it has `n_objects` objects, each colour at most once, each one clean
    (bounding box about square, area between half a disc's and 1.3 squares' of `object_size`,
    filling at least 60% of its box), at most `max_stray_px` coloured pixels outside them, and
    no blob of another colour (at least `min_area` pixels after the opening).

    Args:
        images: uint8 (n, H, W, 3), or floats in [-1, 1] as (n, 3, H, W) or (n, H, W, 3).
        max_color_dist: the largest RGB distance (0..255 a channel) of a palette pixel from
            the palette colours and their blends with the background.
    """
    from scipy import ndimage

    rgb = to_uint8_images(images)
    n = rgb.shape[0]
    if n == 0:
        return []
    palette = np.array([BACKGROUND] + [PALETTE[c] for c in colors], dtype=np.float32)  # (P, 3)
    # (n, H, W): 0 background, c + 1 colour c, -1 another colour
    nearest = np.empty(rgb.shape[:3], dtype=np.int8)
    chunk = 1024
    for start in range(0, n, chunk):
        x = rgb[start : start + chunk].astype(np.float32)  # (b, H, W, 3)
        d = ((x[..., None, :] - palette) ** 2).sum(-1)  # (b, H, W, P)
        label = d.argmin(-1).astype(np.int8)
        label[_palette_distance(x, palette[1:]) > max_color_dist] = -1
        nearest[start : start + chunk] = label

    opening = np.ones((1, 3, 3), dtype=bool)
    other_blobs, n_other = _label_components(ndimage.binary_opening(nearest == -1, opening))
    other = np.zeros(n, dtype=np.int64)
    if n_other:
        sizes = np.bincount(other_blobs.ravel(), minlength=n_other + 1)  # (n_other + 1,)
        big = sizes >= min_area
        big[0] = False
        other = big[other_blobs].sum((1, 2))

    disc_area = np.pi * object_size**2
    square_area = (2 * object_size + 1) ** 2
    cut = square_fill(object_size)
    found: list[list[tuple[SceneObject, bool, tuple[int, int, int, int]]]] = [[] for _ in range(n)]
    stray = np.zeros(n, dtype=np.int64)
    for c, name in enumerate(colors):
        mask = nearest == c + 1  # (n, H, W)
        # Specks: the raw mask's components below `min_area`.
        raw, n_raw = _label_components(mask)
        if n_raw:
            sizes = np.bincount(raw.ravel(), minlength=n_raw + 1)  # (n_raw + 1,)
            speck = sizes < min_area
            speck[0] = False
            stray += speck[raw].sum((1, 2))
        # Objects: the components after a 3x3 opening (within each image), which strips the
        # specks and threads that noise glues to an object's edge (they would widen its
        # bounding box); squares keep every pixel, discs lose only the four one-pixel tips.
        opened = ndimage.binary_opening(mask, structure=opening)
        labels, count = _label_components(opened)
        if count == 0:
            continue
        index = np.arange(1, count + 1)
        area = ndimage.sum_labels(np.ones_like(labels, dtype=np.float32), labels, index)
        centre = np.array(ndimage.center_of_mass(np.ones(labels.shape), labels, index))  # (m, 3)
        boxes = ndimage.find_objects(labels)
        for a, (img, ci, cj), box in zip(area, centre, boxes, strict=True):
            image = int(round(img))
            if a < min_area:
                continue
            h = box[1].stop - box[1].start
            w = box[2].stop - box[2].start
            fill = a / (h * w)
            clean = (
                0.75 <= h / w <= 1.0 / 0.75
                and 0.5 * disc_area <= a <= 1.3 * square_area
                and fill >= 0.6
            )
            shape = "square" if fill > cut else "circle"
            obj = SceneObject(name, shape, (float(ci), float(cj)), float(a))
            bbox = (box[1].start, box[2].start, box[1].stop, box[2].stop)
            found[image].append((obj, clean, bbox))
    out = []
    for image in range(n):
        blobs = sorted(found[image], key=lambda ocb: -ocb[0].area)
        problem = ""
        names = [o.color for o, _, _ in blobs]
        dirty = [o.color for o, clean, _ in blobs if not clean]
        if len(blobs) != n_objects:
            problem = f"{len(blobs)} objects"
        elif len(set(names)) != len(names):
            problem = "a colour twice"
        elif dirty:
            problem = f"{dirty[0]}: not a clean shape"
        elif other[image]:
            problem = f"{int(other[image])} px of another colour"
        elif stray[image] > max_stray_px:
            problem = f"{int(stray[image])} stray pixels"
        out.append(
            ParsedScene(
                objects=[o for o, _, _ in blobs],
                valid=not problem,
                problem=problem,
                stray_px=int(stray[image]),
                other_px=int(other[image]),
                boxes=[b for _, _, b in blobs],
                clean=[bool(c) for _, c, _ in blobs],
            )
        )
    return out


# -- the measures ---------------------------------------------------------------------------


def _objects(scene: ParsedScene | Sequence[SceneObject]) -> Sequence[SceneObject]:
    return scene.objects if isinstance(scene, ParsedScene) else scene


def _tracks(seq: Sequence[ParsedScene | Sequence[SceneObject]]) -> list[dict[str, SceneObject]]:
    """Per frame, each colour's largest blob."""
    tracks = []
    for scene in seq:
        best: dict[str, SceneObject] = {}
        for obj in _objects(scene):
            if obj.color not in best or obj.area > best[obj.color].area:
                best[obj.color] = obj
        tracks.append(best)
    return tracks


def _colour_counts(scene: ParsedScene | Sequence[SceneObject]) -> Counter[str]:
    return Counter(obj.color for obj in _objects(scene))


def _distance(a: SceneObject, b: SceneObject) -> float:
    (i0, j0), (i1, j1) = a.center, b.center
    return float(np.hypot(i1 - i0, j1 - j0))


_FRAMES_ARE = (
    "sequences must be images (K, T, ...) as one array or a list of K arrays, or K sequences "
    "of T parsed scenes (ParsedScene or lists of SceneObject)"
)


def _as_sequences(sequences: Any, parse_kwargs: Mapping[str, Any]) -> list[Sequence[Any]]:
    """K sequences of parsed scenes, from any form `interpolation_measures` takes."""
    if not hasattr(sequences, "shape"):
        if not isinstance(sequences, Sequence):
            raise TypeError(f"{_FRAMES_ARE}; got {type(sequences).__name__}")
        arrays = [hasattr(seq, "shape") for seq in sequences]
        if any(arrays):
            if not all(arrays):
                raise TypeError(f"{_FRAMES_ARE}; got a list mixing arrays and other things")
            sequences = np.stack([np.asarray(seq) for seq in sequences])  # (K, T, ...)
    if hasattr(sequences, "shape"):
        shape = tuple(sequences.shape)
        if len(shape) != 5:
            raise ValueError(f"image sequences must be (K, T, ...) 5-D, got {shape}")
        flat = sequences.reshape(shape[0] * shape[1], *shape[2:])
        parsed = parse_scenes(flat, **parse_kwargs)
        return [parsed[k * shape[1] : (k + 1) * shape[1]] for k in range(shape[0])]
    for seq in sequences:
        if not isinstance(seq, Sequence):
            raise TypeError(f"{_FRAMES_ARE}; got a sequence of type {type(seq).__name__}")
        for scene in seq:
            if not isinstance(scene, ParsedScene) and not (
                isinstance(scene, Sequence) and all(isinstance(o, SceneObject) for o in scene)
            ):
                raise TypeError(f"{_FRAMES_ARE}; got a frame of type {type(scene).__name__}")
    return list(sequences)


def interpolation_measures(
    sequences: Any,
    *,
    jump_px: float = 4.0,
    jump_ratio: float = 3.0,
    **parse_kwargs: Any,
) -> dict[str, float]:
    """How objects move along K interpolations of T frames each.

    Each object is matched from frame to frame by colour (the largest blob of that colour).
    Two ways of calling a transition a teleport:

    - `teleport_frac` (the plain rule): some object's centre moves more than `jump_px`, or an
      object appears or vanishes (the number of objects of some colour changes: a second
      blob of one colour, as in a cross-fade, appears too). Every transition counts, so a generator that ignores z (or
      draws nothing) scores 0, and a fast smooth move (crossing the canvas in a few frames)
      counts as teleporting.
    - `teleport_frac_valid` (the robust rule): only the transitions from a sequence's first
      to its last valid scene (`ParsedScene.valid`; a list of objects counts as valid), in
      interpolations that go somewhere (some object ends more than `jump_px` from where it
      started, between those two frames). Between two consecutive valid frames an object
      teleports when it appears or vanishes, or its step is larger than both `jump_px` and
      `jump_ratio` times the median of its steps between consecutive valid frames of its
      sequence (its own typical speed). A run of invalid frames between two valid ones is
      bridged: its g transitions qualify, and count one teleport if an object of the valid
      frames is missing from, or shows more than once in, one of the invalid frames (a fade
      out and back in, a cross-fade), or moves between the two valid frames more than g
      times that step limit. NaN when no transition qualifies: a collapsed generator has no
      score, not the best.

    Args:
        sequences: images (K, T, H, W, 3) uint8 or (K, T, 3, H, W) floats in [-1, 1] (one
            array, or a list of K arrays of T frames), or K sequences of T parsed scenes
            (`ParsedScene` or lists of `SceneObject`).
        jump_px: the largest step of a smooth move (the plain rule), and the least step that
            can be a jump (the robust rule).
        jump_ratio: a step this many times the object's median step is a jump (robust rule).
        parse_kwargs: passed to `parse_scenes` when images are given.

    Returns:
        teleport_frac: share of the K x (T - 1) transitions that teleport (plain rule);
        teleport_frac_valid: share of the qualifying transitions that teleport (robust rule);
        valid_transitions_frac: share of the transitions that qualify for the robust rule
            (bridged gaps included);
        interp_valid_frac: share of the frames that are valid scenes (1 for lists of
            objects): read the robust rule with it, as a generator that draws blurs along
            every line never teleports by the plain rule;
        appear_vanish_frac: share of transitions in which an object appears or vanishes;
        mean_step_px, max_jump_px: mean and largest centre step of the matched objects
            (NaN where no object is matched across two frames: nothing to measure);
        steps_over_4px_frac, steps_over_8px_frac: shares of those steps over 4 and 8 px;
        endpoint_px: mean distance between an object's centres in the first and the last
            frame (objects in both): how far the interpolations move things (0: collapse).
    """
    sequences = _as_sequences(sequences, parse_kwargs)
    transitions = teleports = appear_vanish = 0
    qualifying = robust_teleports = 0
    frames = valid_frames = 0
    steps: list[float] = []
    endpoints: list[float] = []
    for seq in sequences:
        tracks = _tracks(seq)
        valid = [s.valid if isinstance(s, ParsedScene) else True for s in seq]
        frames += len(valid)
        valid_frames += sum(valid)
        if tracks:
            first, last = tracks[0], tracks[-1]
            endpoints += [_distance(first[c], last[c]) for c in set(first) & set(last)]
        # each colour's steps between valid frames along this sequence, for its median
        own: dict[str, list[float]] = {}
        per_transition = []
        for t, (before, after) in enumerate(zip(tracks[:-1], tracks[1:], strict=True)):
            moved = {c: _distance(before[c], after[c]) for c in set(before) & set(after)}
            if valid[t] and valid[t + 1]:
                for c, step in moved.items():
                    own.setdefault(c, []).append(step)
            # An object appears or vanishes: a colour's count of objects changes (a second blob
            # of one colour appearing beside the first, as in a cross-fade, counts too).
            changed = _colour_counts(seq[t]) != _colour_counts(seq[t + 1])
            per_transition.append((changed, moved))
        median = {c: float(np.median(v)) for c, v in own.items()}
        shown = [t for t, ok in enumerate(valid) if ok]
        goes_somewhere = len(shown) >= 2 and any(
            _distance(tracks[shown[0]][c], tracks[shown[-1]][c]) > jump_px
            for c in set(tracks[shown[0]]) & set(tracks[shown[-1]])
        )
        for changed, moved in per_transition:
            transitions += 1
            steps += moved.values()
            appear_vanish += changed
            teleports += changed or any(step > jump_px for step in moved.values())
        if not goes_somewhere:
            continue
        # The robust rule walks from valid frame to valid frame: every transition between the
        # first and the last valid frame qualifies, and a run of invalid frames is bridged.
        for a, b in zip(shown[:-1], shown[1:], strict=True):
            gap = b - a  # transitions from frame a to frame b
            qualifying += gap
            before, after = tracks[a], tracks[b]
            limit = {c: gap * max(jump_px, jump_ratio * median.get(c, 0.0)) for c in before}
            teleported = set(before) != set(after) or any(
                _distance(before[c], after[c]) > limit[c] for c in set(before) & set(after)
            )
            # Inside a bridged gap: an object that vanishes for a while (a fade out and back in)
            # or shows twice (a cross-fade, here and there at once) teleported, however close
            # its two ends are. One teleport per gap, as a one-frame jump counts once.
            for t in range(a + 1, b):
                colours = _colour_counts(seq[t])
                teleported = teleported or any(colours[c] != 1 for c in before)
            robust_teleports += teleported
    if transitions == 0:
        raise ValueError("interpolation_measures needs sequences of at least 2 frames")
    step_array = np.array(steps, dtype=np.float64)
    return {
        "teleport_frac": teleports / transitions,
        "teleport_frac_valid": robust_teleports / qualifying if qualifying else float("nan"),
        "valid_transitions_frac": qualifying / transitions,
        "interp_valid_frac": valid_frames / frames,
        "appear_vanish_frac": appear_vanish / transitions,
        "mean_step_px": float(step_array.mean()) if steps else float("nan"),
        "max_jump_px": float(step_array.max()) if steps else float("nan"),
        "steps_over_4px_frac": float((step_array > 4).mean()) if steps else float("nan"),
        "steps_over_8px_frac": float((step_array > 8).mean()) if steps else float("nan"),
        "endpoint_px": float(np.mean(endpoints)) if endpoints else float("nan"),
    }


def _centre_histogram(
    scenes: Iterable[ParsedScene | Sequence[SceneObject]], size: int, cells: int
) -> np.ndarray:
    centres = np.array(
        [obj.center for scene in scenes for obj in _objects(scene)], dtype=np.float64
    ).reshape(-1, 2)
    edges = np.linspace(0, size, cells + 1)
    hist, _, _ = np.histogram2d(centres[:, 0], centres[:, 1], bins=(edges, edges))
    return hist  # (cells, cells), rows i


def position_coverage(
    scenes: Iterable[ParsedScene | Sequence[SceneObject]],
    reference: Iterable[ParsedScene | Sequence[SceneObject]],
    *,
    size: int = 64,
    cells: int = 8,
) -> dict[str, float]:
    """How the objects' centres in `scenes` spread over the canvas against `reference`'s.

    Both sets of centres (every object of every scene, valid or not) are counted on a
    `cells` x `cells` grid over the canvas.

    Returns:
        position_js: Jensen-Shannon divergence of the two distributions, base 2, in [0, 1]
            (1 when `scenes` has no object at all);
        empty_cells_frac: share of the cells the reference fills that `scenes` never does.
    """
    gen = _centre_histogram(scenes, size, cells)
    ref = _centre_histogram(reference, size, cells)
    if ref.sum() == 0:
        raise ValueError("position_coverage: the reference has no objects")
    filled = ref > 0
    empty = float((filled & (gen == 0)).sum() / filled.sum())
    if gen.sum() == 0:
        return {"position_js": 1.0, "empty_cells_frac": empty}
    p, q = gen.ravel() / gen.sum(), ref.ravel() / ref.sum()
    m = (p + q) / 2

    def kl(a: np.ndarray, b: np.ndarray) -> float:
        nz = a > 0
        return float((a[nz] * np.log2(a[nz] / b[nz])).sum())

    js = 0.5 * kl(p, m) + 0.5 * kl(q, m)
    return {"position_js": float(min(max(js, 0.0), 1.0)), "empty_cells_frac": empty}


def attribute_frequencies(
    scenes: Iterable[ParsedScene | Sequence[SceneObject]],
    *,
    colors: Sequence[str] = ("red", "blue"),
    shapes: Sequence[str] = SHAPES,
) -> dict[str, float]:
    """Shares of the objects of each shape (`shape/circle`, ...) and colour (`color/red`, ...)."""
    objects = [obj for scene in scenes for obj in _objects(scene)]
    total = max(len(objects), 1)
    out = {f"shape/{s}": sum(o.shape == s for o in objects) / total for s in shapes}
    out.update({f"color/{c}": sum(o.color == c for o in objects) / total for c in colors})
    return out


def frequency_gap(freqs: Mapping[str, float], reference: Mapping[str, float]) -> dict[str, float]:
    """Total variation distance of the shape shares and of the colour shares from the reference's."""
    out = {}
    for group in ("shape", "color"):
        keys = [k for k in reference if k.startswith(group + "/")]
        out[f"{group}_tv"] = 0.5 * sum(abs(freqs.get(k, 0.0) - reference[k]) for k in keys)
    return out


def sample_measures(
    parsed: Sequence[ParsedScene],
    reference: Sequence[ParsedScene | Sequence[SceneObject]],
    reference_freqs: Mapping[str, float] | None = None,
    **coverage_kwargs: Any,
) -> dict[str, float]:
    """What a generative model's samples are scored on, against the data's scenes.

    `valid_frac` (the share of well-formed scenes), `shape_tv` and `color_tv`
    (`frequency_gap`), `position_js` and `empty_cells_frac` (`position_coverage`).
    `reference_freqs`: the reference's `attribute_frequencies`, if already computed.
    """
    if reference_freqs is None:
        reference_freqs = attribute_frequencies(reference)
    out = {"valid_frac": float(np.mean([p.valid for p in parsed])) if parsed else float("nan")}
    out.update(frequency_gap(attribute_frequencies(parsed), reference_freqs))
    out.update(position_coverage(parsed, reference, **coverage_kwargs))
    return out


# -- a picture of the parser's findings -----------------------------------------------------


def findings_figure(images: Any, parsed: Sequence[ParsedScene], title: str = "") -> Any:
    """A matplotlib figure: each image with the parser's findings drawn on it and the verdict
    (valid, or the problem) below.

    Each object gets its bounding box and a cross at its centre, labelled with its colour and
    shape ("red sq", "blue ci"); a clean blob's box is solid green, a blob that is not a clean
    shape (`ParsedScene.clean`) dashed magenta and labelled "?"."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    rgb = to_uint8_images(images)
    n = len(parsed)
    cols = min(n, 8)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.1 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.axis("off")
    for k, (image, scene) in enumerate(zip(rgb, parsed, strict=True)):
        ax = axes.flat[k]
        ax.axis("on")
        ax.imshow(image, interpolation="nearest")
        boxes = scene.boxes or [None] * len(scene.objects)
        clean = scene.clean or [True] * len(scene.objects)
        for obj, box, ok in zip(scene.objects, boxes, clean, strict=True):
            i, j = obj.center
            if box is None:  # a scene built by hand: a square of the blob's area
                half = float(np.sqrt(obj.area)) / 2
                box = (i - half + 0.5, j - half + 0.5, i + half + 0.5, j + half + 0.5)
            i0, j0, i1, j1 = box
            # pixel k covers [k - 0.5, k + 0.5] in imshow's coordinates
            ax.add_patch(
                Rectangle(
                    (j0 - 0.5, i0 - 0.5),
                    j1 - j0,
                    i1 - i0,
                    fill=False,
                    ec="lime" if ok else "magenta",
                    ls="-" if ok else "--",
                    lw=1.0,
                )
            )
            ax.plot([j], [i], marker="x", color="black", ms=4)
            label = f"{obj.color} {obj.shape[:2]}" + ("" if ok else " ?")
            ax.text(
                (j0 + j1) / 2 - 0.5,
                i0 - 1.5,
                label,
                color="black" if ok else "magenta",
                fontsize=6,
                ha="center",
                va="bottom",
            )
        verdict = "valid" if scene.valid else scene.problem
        ax.set_xlabel(verdict, fontsize=7, color="green" if scene.valid else "red")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def image_grid(images: Any, cols: int = 8, *, pad: int = 2, scale: int = 1) -> np.ndarray:
    """Tile images (any layout `to_uint8_images` takes) row by row, `cols` a row, on a gray
    background with `pad` pixels between them, each magnified `scale` times: uint8 (H, W, 3)."""
    rgb = to_uint8_images(images)
    if scale > 1:
        rgb = rgb.repeat(scale, axis=1).repeat(scale, axis=2)
    n, h, w, _ = rgb.shape
    cols = max(1, min(cols, n))
    rows = (n + cols - 1) // cols
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 160, dtype=np.uint8)
    for k in range(n):
        r, c = divmod(k, cols)
        out[
            pad + r * (h + pad) : pad + r * (h + pad) + h,
            pad + c * (w + pad) : pad + c * (w + pad) + w,
        ] = rgb[k]
    return out


def write_gif(path: str | os.PathLike[str], frames: Sequence[np.ndarray], fps: float = 8.0) -> Path:
    """Write uint8 (H, W, 3) frames as a looping GIF, played forwards then backwards."""
    from PIL import Image

    seq = list(frames) + list(frames[-2:0:-1])
    pictures = [Image.fromarray(f) for f in seq]
    path = Path(path)
    pictures[0].save(
        path, save_all=True, append_images=pictures[1:], duration=int(1000 / fps), loop=0
    )
    return path


def write_interpolation_gif(
    path: str | os.PathLike[str], frames: Any, cols: int = 4, scale: int = 2
) -> Path:
    """Write K interpolations of T frames, (K, T, ...) in any layout `image_grid` takes, as one
    GIF (`write_gif`) whose frame t tiles the K images of step t, `cols` a row."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    k, t = frames.shape[:2]
    grids = [image_grid(frames[:, j], cols=min(k, cols), scale=scale) for j in range(t)]
    return write_gif(path, grids)
