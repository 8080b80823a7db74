"""Config of `gan.image_folder`: the Sort-of-CLEVR GAN on any folder of images. No torch here."""

from __future__ import annotations

from dataclasses import dataclass

from cc_bench.config import bounded
from cc_bench.errors import UserError
from cc_bench.gan.configs import GanConfig

SYNTHETIC_SORT_OF_CLEVR = "synthetic:sort_of_clevr"
"""`--data-dir` value that writes Sort-of-CLEVR scenes to a temporary folder and reads that
(for tests and demos: no data ships with the suite)."""


@dataclass(frozen=True)
class ImageFolderConfig(GanConfig):
    """The DCGAN-like GAN (conv or CoordConv on each side) at 64x64 on a folder of images.

    The paper's LSUN-bedrooms setting, as an example: export the bedrooms to a folder of
    JPEGs, then `cc-bench run gan.image_folder --data-dir ~/lsun/bedroom --width 2`. Every image
    is resized (shorter side 64) and centre-cropped to 64x64. Nothing downloads. `jump_px` and
    `data_seed` do not apply (no scene parser; the folder is the data), except that
    `synthetic:sort_of_clevr` draws its scenes with `data_seed`.
    """

    data_dir: str = ""
    """Required: a folder of images (torchvision ImageFolder layout, class subfolders, or a
    flat folder), or `synthetic:sort_of_clevr` (a small generated folder, for tests and demos)."""
    n_train: int = bounded(50_000, ge=2)
    """Images read from the folder (a fixed sample when it holds more; all when fewer)."""
    diversity_images: int = bounded(256, ge=2)
    """Data images whose mean pairwise distance the samples' is compared with."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.data_dir:
            raise UserError(
                "--data-dir is required: a folder of images (class subfolders as torchvision's "
                f"ImageFolder reads them, or a flat folder), or {SYNTHETIC_SORT_OF_CLEVR} for "
                "a small generated demo folder"
            )
