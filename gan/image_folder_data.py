"""Images from any folder for `gan.image_folder`: decoded once, resized, centre-cropped, uint8.

The folder is read the way torchvision's `ImageFolder` reads it (images in class
subfolders, e.g. an exported LSUN category or CelebA's `img_align_celeba/` under a parent),
or, when it has no subfolders with images, as a flat folder of images. Every image is
resized so its shorter side is `size` and centre-cropped to `size` x `size` (torchvision's
`Resize` + `CenterCrop`), then kept in memory as uint8 (N, size, size, 3) RGB: the training
loop converts batches on the device, so reading is paid once.

Nothing here downloads. A missing, empty or unreadable folder (or class subfolder), or one
with fewer than 2 images that decode, is a `UserError` naming the folder and what it must
hold; `check_decodes` finds the last before a run folder is made. `SYNTHETIC_SORT_OF_CLEVR`
is a test and demo source: a small folder of Sort-of-CLEVR PNGs written on the fly, read back
through the same path.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from cc_bench.errors import UserError
from cc_bench.gan.image_folder_config import (
    SYNTHETIC_SORT_OF_CLEVR,
    WHAT_IT_MUST_HOLD,
    check_data_dir,
)

DECODE_CHECK_FILES = 64
"""`check_decodes` tries at most this many of a folder's image files."""
ProgressFn = Callable[[int, str], Any]
"""(total, desc) -> a bar with `update(n)` and `close()`, as `Tracker.progress` makes one."""


def image_extensions() -> tuple[str, ...]:
    """The file endings torchvision's ImageFolder takes as images."""
    from torchvision.datasets.folder import IMG_EXTENSIONS

    return tuple(IMG_EXTENSIONS)


def _scan(root: Path) -> tuple[list[Path], list[str], int]:
    """The image files of `root` (see `list_images`), its class subfolders that cannot be
    read (skipped: os.walk would skip them without a word), and how many image files lie
    directly in `root` unread because subfolders hold images (ImageFolder reads only those)."""
    from torchvision.datasets import ImageFolder

    extensions = image_extensions()
    classes = [e for e in sorted(os.scandir(root), key=lambda e: e.name) if e.is_dir()]
    locked = [c.name for c in classes if not os.access(c.path, os.R_OK | os.X_OK)]
    readable = [c for c in classes if c.name not in locked]
    files: list[Path] = []
    if readable:
        try:
            samples = ImageFolder.make_dataset(
                str(root),
                {c.name: k for k, c in enumerate(readable)},
                extensions=extensions,
                allow_empty=True,
            )
            files = [Path(path) for path, _ in samples]
        except (FileNotFoundError, PermissionError):
            files = []
    loose = sorted(
        Path(e.path)
        for e in os.scandir(root)
        if e.is_file() and e.name.lower().endswith(extensions)
    )
    if not files:  # a flat folder (or class folders without images)
        return loose, locked, 0
    return files, locked, len(loose)


def _folder(data_dir: str | Path) -> Path:
    """The checked folder `data_dir` (a UserError for a synthetic source: nothing to list)."""
    root = check_data_dir(str(data_dir))
    if root is None:
        raise UserError(f"--data-dir {data_dir}: a synthetic source, not a folder to list")
    return root


def _list(data_dir: str | Path) -> tuple[Path, list[Path], list[str], int]:
    """The checked folder, its image files, its unreadable class subfolders and the count of
    its own image files left unread beside image subfolders; a UserError when it holds no
    image files it can read."""
    root = _folder(data_dir)
    try:
        files, locked, loose = _scan(root)
    except PermissionError as exc:
        raise UserError(
            f"--data-dir {root}: cannot be read ({exc.strerror}); {WHAT_IT_MUST_HOLD}"
        ) from None
    if not files and locked:
        raise UserError(
            f"--data-dir {root}: its subfolder(s) {', '.join(locked)} cannot be read "
            f"(permission denied) and it holds no other images; {WHAT_IT_MUST_HOLD}"
        )
    if not files:
        raise UserError(f"--data-dir {root}: holds no images; {WHAT_IT_MUST_HOLD}")
    return root, files, locked, loose


def _loose_note(root: Path, loose: int) -> str:
    """What a user with `loose` images in `root` beside its image subfolders must know."""
    return (
        f"the {loose} image file(s) directly in {root} are not read: its subfolders hold "
        "images, and then only they are (one class each, as ImageFolder reads them)"
    )


def list_images(data_dir: str | Path) -> list[Path]:
    """The image files of `data_dir`, in a fixed order; a UserError when there are none.

    With subfolders that hold images, those are read as torchvision's `ImageFolder` does
    (one class per subfolder, recursively); otherwise the folder's own images. Class
    subfolders that cannot be read are skipped (`load_images` warns); when no images are
    left, the UserError names them. (Unreadable folders deeper down are skipped silently, as
    `ImageFolder` skips them.)
    """
    return _list(data_dir)[1]


def _load_one(path: Path, size: int) -> np.ndarray | None:
    """One image resized (shorter side `size`) and centre-cropped: uint8 (size, size, 3)."""
    from PIL import Image, UnidentifiedImageError
    from torchvision.transforms import functional as TF

    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
            img = TF.resize(img, size, interpolation=TF.InterpolationMode.BILINEAR)
            img = TF.center_crop(img, [size, size])
            return np.asarray(img, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None  # unreadable, or too large to decode safely: skipped with the others


def _too_few_decode(
    root: Path, good: int, tried: int, total: int, bad: list[Path], loose: int
) -> UserError:
    """The error for a folder where `good` (< 2) of the `tried` of its `total` files decode
    and `bad` did not, naming the `loose` files beside its subfolders that were not read."""
    which = f"its {total}" if tried == total else f"the first {tried} of its {total}"
    if good == 0:
        said = f"none of {which} image files could be read (first: {bad[0].name})"
    else:
        said = (
            f"only 1 of {which} image files could be read; gan.image_folder needs at least 2 "
            "(samples are compared in pairs)"
        )
    note = f"; {_loose_note(root, loose)}" if loose else ""
    return UserError(f"--data-dir {root}: {said}; {WHAT_IT_MUST_HOLD}{note}")


def _found_images(root: Path) -> Iterator[Path]:
    """The image files a run would read from `root` (see `list_images`), found lazily in the
    file system's order: class subfolders' (sorted, each walked as found) if any holds one,
    else `root`'s own. Nothing is sorted or listed whole but `root` itself, so the first few
    of a folder of millions come in a second or two."""
    extensions = image_extensions()
    own: list[Path] = []  # `root`'s images, read only where no subfolder holds any
    folders = []
    with os.scandir(root) as entries:
        for e in entries:
            if e.is_dir():
                folders.append(e.path)
            elif (
                len(own) < DECODE_CHECK_FILES
                and e.is_file()
                and e.name.lower().endswith(extensions)
            ):
                own.append(Path(e.path))
    found = False
    for folder in sorted(folders):
        if os.access(folder, os.R_OK | os.X_OK):
            for path in _walk_images(folder, extensions):
                found = True
                yield path
    if not found:
        yield from own


def _walk_images(folder: str, extensions: tuple[str, ...]) -> Iterator[Path]:
    """The image files under `folder`, depth first, as the file system lists them (links
    followed, as ImageFolder follows them); a folder that cannot be read is skipped, as
    os.walk skips it."""
    below: list[str] = []
    # Unreadable, a link loop, removed meanwhile: skipped.
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for e in entries:
            if e.is_dir():
                below.append(e.path)
            elif e.is_file() and e.name.lower().endswith(extensions):
                yield Path(e.path)
    for sub in below:
        yield from _walk_images(sub, extensions)


def check_decodes(data_dir: str | Path) -> None:
    """At least 2 image files of `data_dir` decode: a UserError naming the folder otherwise.

    First the quick way: the first `DECODE_CHECK_FILES` files found lazily (`_found_images`),
    stopping at the second that decodes, so a launch can check each run it plans even on a
    folder of millions. Where that finds fewer than 2, the folder is listed as a run lists it
    (`list_images`) and its first `DECODE_CHECK_FILES` files are tried in that order: the
    verdict and the message are the listing's."""
    root = _folder(data_dir)
    with contextlib.suppress(OSError):  # `root` itself unreadable: the listing says so
        if _decode_two(itertools.islice(_found_images(root), DECODE_CHECK_FILES))[0] == 2:
            return
    root, files, _, loose = _list(data_dir)
    tried = files[:DECODE_CHECK_FILES]
    good, bad = _decode_two(tried)
    if good < 2:
        raise _too_few_decode(root, good, len(tried), len(files), bad, loose)


def _decode_two(paths: Iterable[Path]) -> tuple[int, list[Path]]:
    """Decode `paths` in turn until 2 do: how many did (at most 2), and those that did not."""
    good, bad = 0, []
    for path in paths:
        if _load_one(path, 8) is None:
            bad.append(path)
        else:
            good += 1
            if good == 2:
                break
    return good, bad


def load_images(
    data_dir: str | Path,
    n: int,
    size: int = 64,
    *,
    seed: int = 0,
    workers: int | None = None,
    progress: ProgressFn | None = None,
) -> np.ndarray:
    """Up to `n` images of `data_dir` as uint8 (N, size, size, 3), RGB, N >= 2.

    With more than `n` images, a fixed sample drawn with `seed` (the config's `data_seed`, not
    the run's seed, so every run sees the same data) is taken. Unreadable files (and class
    subfolders) are skipped with one warning; when fewer than 2 can be read (the diversity
    measure compares pairs), a UserError. `progress` (e.g. `Tracker.progress`) shows one
    step per file decoded.
    """
    root, files, locked, loose = _list(data_dir)
    if len(files) > n:
        keep = np.sort(np.random.default_rng(seed).choice(len(files), size=n, replace=False))
        files = [files[k] for k in keep]
    workers = workers or min(8, os.cpu_count() or 1)
    bar = progress(len(files), f"reading {root}") if progress is not None else None
    images: list[np.ndarray | None] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:  # PIL decodes outside the GIL
        for image in pool.map(lambda p: _load_one(p, size), files):
            images.append(image)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    bad = [f for f, im in zip(files, images, strict=True) if im is None]
    good = [im for im in images if im is not None]
    if len(good) < 2:
        raise _too_few_decode(root, len(good), len(files), len(files), bad, loose)
    if loose:
        print(f"warning: {_loose_note(root, loose)}", file=sys.stderr)
    if locked:
        print(
            f"warning: skipped {len(locked)} subfolder(s) of {data_dir} that cannot be read: "
            f"{', '.join(locked)}",
            file=sys.stderr,
        )
    if bad:
        print(
            f"warning: skipped {len(bad)} unreadable image file(s) in {data_dir} "
            f"(first: {bad[0].name})",
            file=sys.stderr,
        )
    return np.stack(good)


def write_synthetic_folder(folder: Path, n: int, seed: int = 0) -> None:
    """Write `n` Sort-of-CLEVR scenes as PNGs into `folder` (a flat folder)."""
    from PIL import Image

    from cc_bench.envs.sort_of_clevr import generate_scenes

    images, _ = generate_scenes(n, seed, cache=False)
    folder.mkdir(parents=True, exist_ok=True)
    for k, image in enumerate(images):
        Image.fromarray(image).save(folder / f"scene_{k:05d}.png")


def load_data(
    data_dir: str, n: int, size: int = 64, seed: int = 0, progress: ProgressFn | None = None
) -> np.ndarray:
    """`load_images` (its sample drawn with `seed`), or for `SYNTHETIC_SORT_OF_CLEVR` the same
    after writing `n` scenes drawn with `seed`."""
    if data_dir != SYNTHETIC_SORT_OF_CLEVR:  # checked there (unknown synthetic too)
        return load_images(data_dir, n, size, seed=seed, progress=progress)
    with tempfile.TemporaryDirectory(prefix="cc_bench_synthetic_") as tmp:
        write_synthetic_folder(Path(tmp), n, seed)
        return load_images(tmp, n, size, progress=progress)
