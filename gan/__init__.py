"""GANs on Sort-of-CLEVR with a conv or CoordConv generator and discriminator (paper section 5).

`gan.sort_of_clevr` trains the paper's DCGAN-like networks (`cc_bench.nets`) and turns the
paper's pictures into numbers: the share of well-formed scenes, how the objects cover the
canvas, and how often an object teleports along a latent interpolation
(`cc_bench.envs.sort_of_clevr`). Suites: `gen-smoke`, `gen-laptop`, `gen-paper`.
"""

from cc_bench.gan.configs import GanConfig
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
    "gan.sort_of_clevr",
    GanConfig,
    run="cc_bench.gan.sort_of_clevr:run",
    description="DCGAN-like GAN on Sort-of-CLEVR: valid scenes, position coverage and "
    "teleports along latent interpolations (section 5)",
    metrics={
        "valid_frac": "higher",
        "teleport_frac": "lower",
        "appear_vanish_frac": "lower",
        "interp_valid_frac": "higher",
        "position_js": "lower",
        "empty_cells_frac": "lower",
        "shape_tv": "lower",
        "color_tv": "lower",
        "max_jump_px": "lower",
        "mean_step_px": "neither",
        "d_loss": "neither",
        "g_loss": "neither",
        "d_real": "neither",
        "d_fake": "neither",
        "params_g": "neither",
        "params_d": "neither",
        "images_per_s": "higher",
        "wall_s": "lower",
    },
    headline=("teleport_frac", "valid_frac", "position_js"),
    curve_x="step",  # iterations: the same batch size and data for both sides of a group
)

# A few seconds on a CPU: a handful of iterations, tiny networks, small evaluations.
_SMOKE = {
    "width": 0.0625,
    "n_train": 64,
    "epochs": 1,
    "batch_size": 16,
    "n_samples": 16,
    "n_pairs": 2,
    "interp_steps": 4,
}
# About 30 minutes on this shared 2-core CPU with `--workers 3` (one thread a run: the conv
# pair trains at about 78 images/s, the CoordConv pair at about 22; docs/gan.md).
_LAPTOP = {
    "width": 0.125,
    "n_train": 5_000,
    "epochs": 6,
    "batch_size": 16,
    "eval_every": 2,
    "n_samples": 256,
    "n_pairs": 16,
    "interp_steps": 16,
    "log_every": 25,
}

register_suite(
    Suite(
        "gen-smoke",
        "gan.sort_of_clevr on a tiny budget, conv and CoordConv: seconds (for tests)",
        (SuiteEntry("gan.sort_of_clevr", seeds=1, fixed=_SMOKE),),
    )
)
register_suite(
    Suite(
        "gen-laptop",
        "gan.sort_of_clevr, conv/conv vs coordconv/coordconv, 3 seeds, width 1/8, 5,000 images, "
        "6 epochs: about 30 minutes on a 2-core CPU with --workers 3",
        (SuiteEntry("gan.sort_of_clevr", seeds=3, fixed=_LAPTOP),),
    )
)
_PAPER = register_suite(
    Suite(
        "gen-paper",
        "gan.sort_of_clevr at the paper's sizes (full width, 50,000 images, batch 16, 50 "
        "epochs), 3 seeds: for a GPU cluster",
        (SuiteEntry("gan.sort_of_clevr", seeds=3, fixed={"eval_every": 5}),),
    )
)
extend_suite(
    "smoke",
    SuiteEntry("gan.sort_of_clevr", seeds=1, fixed=_SMOKE),
    description=SMOKE_DESCRIPTION,
)
extend_suite("paper", *_PAPER.entries, description=PAPER_DESCRIPTION)

# -- gan.image_folder (issue 13): the same GAN on any folder of images ----------------------
from cc_bench.gan.image_folder_config import ImageFolderConfig  # noqa: E402

register_benchmark(
    "gan.image_folder",
    ImageFolderConfig,
    run="cc_bench.gan.image_folder:run",
    description="the Sort-of-CLEVR GAN at 64x64 on any folder of images (--data-dir): "
    "pixel-space interpolation smoothness and sample diversity, no labels",
    metrics={
        "interp_mean_step": "lower",
        "interp_max_step": "lower",
        "interp_lines": "neither",
        "sample_pairwise_dist": "neither",
        "data_pairwise_dist": "neither",
        "diversity_ratio": "neither",
        "diversity_gap": "lower",
        "d_loss": "neither",
        "g_loss": "neither",
        "d_real": "neither",
        "d_fake": "neither",
        "params_g": "neither",
        "params_d": "neither",
        "images_per_s": "higher",
        "wall_s": "lower",
    },
    headline=("interp_max_step", "diversity_gap"),
    curve_x="step",
)
extend_suite(
    "smoke",
    SuiteEntry(
        "gan.image_folder",
        seeds=1,
        fixed={**_SMOKE, "data_dir": "synthetic:sort_of_clevr", "diversity_images": 16},
    ),
    description=SMOKE_DESCRIPTION,
)
register_suite(
    Suite(
        "image-folder-laptop",
        "gan.image_folder on the synthetic Sort-of-CLEVR folder (1,500 scenes, 2 epochs, width "
        "1/8), conv vs coordconv, 3 seeds: 6 minutes on the shared 2-core CPU, --workers 2",
        (
            SuiteEntry(
                "gan.image_folder",
                seeds=3,
                fixed={
                    "data_dir": "synthetic:sort_of_clevr",
                    "width": 0.125,
                    "n_train": 1_500,
                    "epochs": 2,
                    "batch_size": 16,
                    "eval_every": 1,
                    "n_samples": 256,
                    "n_pairs": 16,
                    "interp_steps": 16,
                    "log_every": 10,
                },
            ),
        ),
    )
)
