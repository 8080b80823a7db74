"""Images from any folder for `gan.image_folder`: decoded once, resized, centre-cropped, uint8.

The folder is read the way torchvision's `ImageFolder` reads it (images in class
subfolders, e.g. an exported LSUN category or CelebA's `img_align_celeba/` under a parent),
or, when it has no subfolders with images, as a flat folder of images. Every image is
resized so its shorter side is `size` and centre-cropped to `size` x `size` (torchvision's
`Resize` + `CenterCrop`), then kept in memory as uint8 (N, size, size, 3) RGB: the training
loop converts batches on the device, so reading is paid once.

Nothing here downloads. A missing, empty or unreadable folder, or one with fewer than 2 images
that decode, is a `UserError` naming the folder and what it must hold. `SYNTHETIC_SORT_OF_CLEVR` is a test and demo source: a small
folder of Sort-of-CLEVR PNGs written on the fly, read back through the same path.
"""

from __future__ import annotations

import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from cc_bench.errors import UserError
from cc_bench.gan.image_folder_config import (
    SYNTHETIC_SORT_OF_CLEVR,
    WHAT_IT_MUST_HOLD,
    check_data_dir,
)


def image_extensions() -> tuple[str, ...]:
    """The file endings torchvision's ImageFolder takes as images."""
    from torchvision.datasets.folder import IMG_EXTENSIONS

    return tuple(IMG_EXTENSIONS)


def list_images(data_dir: str | Path) -> list[Path]:
    """The image files of `data_dir`, in a fixed order; a UserError when there are none.

    With subfolders that hold images, those are read as torchvision's `ImageFolder` does
    (one class per subfolder, recursively); otherwise the folder's own images.
    """
    root = check_data_dir(str(data_dir))
    if root is None:
        raise UserError(f"--data-dir {data_dir}: a synthetic source, not a folder to list")
    extensions = image_extensions()
    try:
        from torchvision.datasets import ImageFolder

        classes = [e for e in sorted(os.scandir(root), key=lambda e: e.name) if e.is_dir()]
        files: list[Path] = []
        if classes:
            try:
                samples = ImageFolder.make_dataset(
                    str(root),
                    {c.name: k for k, c in enumerate(classes)},
                    extensions=extensions,
                    allow_empty=True,
                )
                files = [Path(path) for path, _ in samples]
            except (FileNotFoundError, PermissionError):
                files = []
        if not files:  # a flat folder (or class folders without images)
            files = sorted(
                Path(e.path)
                for e in os.scandir(root)
                if e.is_file() and e.name.lower().endswith(extensions)
            )
    except PermissionError as exc:
        raise UserError(
            f"--data-dir {root}: cannot be read ({exc.strerror}); {WHAT_IT_MUST_HOLD}"
        ) from None
    if not files:
        raise UserError(f"--data-dir {root}: holds no images; {WHAT_IT_MUST_HOLD}")
    return files


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


def load_images(
    data_dir: str | Path, n: int, size: int = 64, *, seed: int = 0, workers: int | None = None
) -> np.ndarray:
    """Up to `n` images of `data_dir` as uint8 (N, size, size, 3), RGB, N >= 2.

    With more than `n` images, a fixed sample drawn with `seed` (the config's `data_seed`, not
    the run's seed, so every run sees the same data) is taken. Unreadable files are skipped
    with one warning; when fewer than 2 can be read (the diversity measure compares pairs), a
    UserError.
    """
    files = list_images(data_dir)
    if len(files) > n:
        keep = np.sort(np.random.default_rng(seed).choice(len(files), size=n, replace=False))
        files = [files[k] for k in keep]
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:  # PIL decodes outside the GIL
        images = list(pool.map(lambda p: _load_one(p, size), files))
    bad = [f for f, im in zip(files, images, strict=True) if im is None]
    good = [im for im in images if im is not None]
    root = Path(data_dir).expanduser()
    if not good:
        raise UserError(
            f"--data-dir {root}: none of its {len(files)} image files could be read "
            f"(first: {bad[0].name}); {WHAT_IT_MUST_HOLD}"
        )
    if len(good) < 2:
        raise UserError(
            f"--data-dir {root}: only 1 of its {len(files)} image files could be read; "
            f"gan.image_folder needs at least 2 (samples are compared in pairs); "
            f"{WHAT_IT_MUST_HOLD}"
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


def load_data(data_dir: str, n: int, size: int = 64, seed: int = 0) -> np.ndarray:
    """`load_images` (its sample drawn with `seed`), or for `SYNTHETIC_SORT_OF_CLEVR` the same
    after writing `n` scenes drawn with `seed`."""
    if data_dir != SYNTHETIC_SORT_OF_CLEVR:
        return load_images(data_dir, n, size, seed=seed)  # checked there (unknown synthetic too)
    with tempfile.TemporaryDirectory(prefix="cc_bench_synthetic_") as tmp:
        write_synthetic_folder(Path(tmp), n, seed)
        return load_images(tmp, n, size)
