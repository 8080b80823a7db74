"""Config of `gan.image_folder`: the Sort-of-CLEVR GAN on any folder of images. No torch here."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from cc_bench.config import MAX_SEED, bounded
from cc_bench.errors import UserError
from cc_bench.gan.configs import GanConfig

SYNTHETIC_SORT_OF_CLEVR = "synthetic:sort_of_clevr"
"""`--data-dir` value that writes Sort-of-CLEVR scenes to a temporary folder and reads that
(for tests and demos: no data ships with the suite)."""

WHAT_IT_MUST_HOLD = (
    "it must hold images (.jpg, .png, ...) directly or in class subfolders "
    "as torchvision's ImageFolder reads them"
)
_PARSER_ONLY = ("jump_px", "jump_ratio")
"""GanConfig fields that only tune the Sort-of-CLEVR scene parser's measures: no parser here."""


def check_data_dir(data_dir: str) -> Path | None:
    """The folder `data_dir` names, checked to exist, be a folder and be readable (a UserError
    naming it otherwise); None for the synthetic source."""
    if data_dir == SYNTHETIC_SORT_OF_CLEVR:
        return None
    if data_dir.startswith("synthetic:"):
        raise UserError(
            f"--data-dir {data_dir}: unknown synthetic source; the only one is "
            f"{SYNTHETIC_SORT_OF_CLEVR}"
        )
    root = Path(data_dir).expanduser()
    if not root.exists():
        raise UserError(f"--data-dir {root}: no such folder; {WHAT_IT_MUST_HOLD}")
    if not root.is_dir():
        raise UserError(f"--data-dir {root}: not a folder; {WHAT_IT_MUST_HOLD}")
    if not os.access(root, os.R_OK | os.X_OK):
        raise UserError(
            f"--data-dir {root}: cannot be read (permission denied); {WHAT_IT_MUST_HOLD}"
        )
    return root


@dataclass(frozen=True)
class ImageFolderConfig(GanConfig):
    """The DCGAN-like GAN (conv or CoordConv on each side) at 64x64 on a folder of images.

    The paper's LSUN-bedrooms setting, as an example: export the bedrooms to a folder of
    JPEGs, then `cc-bench run gan.image_folder --data-dir ~/lsun/bedroom --width 2`. Every image
    is resized (shorter side 64) and centre-cropped to 64x64. Nothing downloads. The folder is
    checked before a run starts and when a launch plans it (`check_inputs`), so `cc-bench run`,
    `cc-bench launch` and its `--dry-run` all reject a bad one before anything starts, while a
    finished run's config still reads back where the folder is gone (a report elsewhere).
    """

    data_dir: str = ""
    """Required: a folder of images (torchvision ImageFolder layout, class subfolders, or a flat folder), or `synthetic:sort_of_clevr` (Sort-of-CLEVR scenes written to a temporary folder, for tests and demos). With `cc-bench launch`: `--set data_dir=DIR`."""
    n_train: int = bounded(50_000, ge=2)
    """Images read from the folder (a fixed sample drawn with `data_seed` when it holds more; all when fewer)."""
    data_seed: int = bounded(0, ge=0, le=MAX_SEED)
    """Seed of the fixed sample of `n_train` images when the folder holds more (the same for every run), and of the `synthetic:sort_of_clevr` scenes."""
    n_samples: int = bounded(512, ge=2)
    """N: samples from a fixed z at each evaluation, whose mean pairwise distance is compared with the data's (at least 2)."""
    jump_px: float = bounded(4.0, gt=0.0)
    """Not used by this benchmark (it has no scene parser to track objects; `interp_max_step` measures jumps in pixel space); only its default is accepted."""
    jump_ratio: float = bounded(3.0, gt=1.0)
    """Not used by this benchmark (no scene parser: `teleport_frac_valid` is the Sort-of-CLEVR GAN's); only its default is accepted."""
    diversity_images: int = bounded(256, ge=2)
    """Data images whose mean pairwise distance the samples' is compared with."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.data_dir:
            raise UserError(
                "data_dir is required (--data-dir DIR; with cc-bench launch, --set "
                "data_dir=DIR): a folder of images (class subfolders as torchvision's "
                f"ImageFolder reads them, or a flat folder), or {SYNTHETIC_SORT_OF_CLEVR} for "
                "a small generated demo folder"
            )
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for name in _PARSER_ONLY:
            if name in defaults and getattr(self, name) != defaults[name]:
                raise UserError(
                    f"invalid {name}={getattr(self, name)}: gan.image_folder has no scene "
                    f"parser, so {name} does not apply (interp_max_step measures jumps); "
                    f"leave it at {defaults[name]}"
                )
        if self.data_dir.startswith("synthetic:"):
            check_data_dir(self.data_dir)  # an unknown source is a bad value anywhere
        else:
            # The folder itself, not the words typed for it, is part of the run's identity:
            # `flat`, `./flat/` and its absolute path are one folder; the same relative path
            # typed from another directory is another.
            real = os.path.realpath(os.path.expanduser(self.data_dir))
            object.__setattr__(self, "data_dir", real)

    def check_inputs(self) -> None:
        """The data folder exists, is a folder, can be read and at least 2 of its first 64
        image files decode (one line naming it if not), before a run folder is made for it.
        (The other files are decoded when they load; unreadable ones are skipped then.)"""
        if not self.data_dir.startswith("synthetic:"):  # a known one: __post_init__ checked
            from cc_bench.gan.image_folder_data import check_decodes

            check_decodes(self.data_dir)  # checks the folder, lists its images, decodes some
