"""Images from any folder for `gan.image_folder`: decoded once, resized, centre-cropped, uint8.

The folder is read the way torchvision's `ImageFolder` reads it (images in class
subfolders, e.g. an exported LSUN category or CelebA's `img_align_celeba/` under a parent),
or, when it has no subfolders with images, as a flat folder of images. Every image is
resized so its shorter side is `size` and centre-cropped to `size` x `size` (torchvision's
`Resize` + `CenterCrop`), then kept in memory as uint8 (N, size, size, 3) RGB: the training
loop converts batches on the device, so reading is paid once.

Nothing here downloads. A missing, empty or unreadable folder is a `UserError` naming the
folder and what it must hold. `SYNTHETIC_SORT_OF_CLEVR` is a test and demo source: a small
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
from cc_bench.gan.image_folder_config import SYNTHETIC_SORT_OF_CLEVR

_WHAT = (
    "it must hold images (.jpg, .png, ...) directly or in class subfolders "
    "as torchvision's ImageFolder reads them"
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
    root = Path(data_dir).expanduser()
    if not root.exists():
        raise UserError(f"--data-dir {root}: no such folder; {_WHAT}")
    if not root.is_dir():
        raise UserError(f"--data-dir {root}: not a folder; {_WHAT}")
    if not os.access(root, os.R_OK | os.X_OK):
        raise UserError(f"--data-dir {root}: cannot be read (permission denied); {_WHAT}")
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
        raise UserError(f"--data-dir {root}: cannot be read ({exc.strerror}); {_WHAT}") from None
    if not files:
        raise UserError(f"--data-dir {root}: holds no images; {_WHAT}")
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
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return None


def load_images(
    data_dir: str | Path, n: int, size: int = 64, *, workers: int | None = None
) -> np.ndarray:
    """Up to `n` images of `data_dir` as uint8 (N, size, size, 3), RGB.

    With more than `n` images, a fixed sample (seed 0, whatever the run's seed, so every run
    sees the same data) is taken. Unreadable files are skipped with one warning; when none
    can be read, a UserError.
    """
    files = list_images(data_dir)
    if len(files) > n:
        keep = np.sort(np.random.default_rng(0).choice(len(files), size=n, replace=False))
        files = [files[k] for k in keep]
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:  # PIL decodes outside the GIL
        images = list(pool.map(lambda p: _load_one(p, size), files))
    bad = [f for f, im in zip(files, images, strict=True) if im is None]
    good = [im for im in images if im is not None]
    if not good:
        raise UserError(
            f"--data-dir {Path(data_dir).expanduser()}: none of its {len(files)} image files "
            f"could be read (first: {bad[0].name}); {_WHAT}"
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
    """`load_images`, or for `SYNTHETIC_SORT_OF_CLEVR` the same after writing `n` scenes."""
    if data_dir == SYNTHETIC_SORT_OF_CLEVR:
        with tempfile.TemporaryDirectory(prefix="cc_bench_synthetic_") as tmp:
            write_synthetic_folder(Path(tmp), n, seed)
            return load_images(tmp, n, size)
    if data_dir.startswith("synthetic:"):
        raise UserError(
            f"--data-dir {data_dir}: unknown synthetic source; the one there is is "
            f"{SYNTHETIC_SORT_OF_CLEVR}"
        )
    return load_images(data_dir, n, size)
