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
        # teleport_frac_valid: between valid frames of interpolations that move, so a
        # generator that ignores z is left unscored; the plain rule's teleport_frac, the
        # appear/vanish share and the largest step are 0 for such a generator: no direction.
        "teleport_frac_valid": "lower",
        "interp_valid_frac": "higher",
        "valid_transitions_frac": "higher",
        "endpoint_px": "neither",
        "valid_frac": "higher",
        "teleport_frac": "neither",
        "appear_vanish_frac": "neither",
        "steps_over_4px_frac": "neither",
        "steps_over_8px_frac": "neither",
        "position_js": "lower",
        "empty_cells_frac": "lower",
        "shape_tv": "lower",
        "color_tv": "lower",
        # the shares themselves: a distance from the data's is shape_tv / color_tv
        "freq_shape_circle": "neither",
        "freq_shape_square": "neither",
        "freq_color_red": "neither",
        "freq_color_blue": "neither",
        "max_jump_px": "neither",
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
    headline=(
        "teleport_frac_valid",
        "interp_valid_frac",
        "endpoint_px",
        "valid_frac",
        "position_js",
    ),
    curve_x="step",  # iterations: the same batch size and data for both sides of a group
    curves=("test/position_js", "test/valid_frac", "losses/d_loss", "losses/g_loss"),
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
# 11 minutes on an idle 2-core CPU with `--workers 3`, 26 to 30 under heavy load (one thread a
# run; idle, a conv run trained 260 images/s, a CoordConv run 63: docs/gan.md, "What the
# laptop suite measured").
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
        "6 epochs: 11 minutes on an idle 2-core CPU with --workers 3 (about 30 under heavy load)",
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
        # A cross-fade is the shortest path in pixel space: a smaller mean step is not better;
        # and a collapsed G's lines span almost nothing, so its calm max step is no better
        # either (read both beside diversity_ratio): no verdict, as teleport_frac's.
        "interp_mean_step": "neither",
        "interp_max_step": "neither",
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
    # interp_* compare only generators that are not collapsed (docs/vae.md): not headlines.
    headline=("diversity_gap",),
    curve_x="step",
    curves=("test/diversity_gap", "losses/d_loss", "losses/g_loss"),
)
_IF_SMOKE = SuiteEntry(
    "gan.image_folder",
    seeds=1,
    fixed={**_SMOKE, "data_dir": "synthetic:sort_of_clevr", "diversity_images": 16},
)
register_suite(
    Suite(
        "image-folder-smoke",
        "gan.image_folder on a tiny synthetic Sort-of-CLEVR folder, conv and CoordConv: "
        "seconds (for tests)",
        (_IF_SMOKE,),
    )
)
extend_suite("smoke", _IF_SMOKE, description=SMOKE_DESCRIPTION)
register_suite(
    Suite(
        "image-folder-laptop",
        "gan.image_folder on the synthetic Sort-of-CLEVR folder (5,000 scenes, 6 epochs, width "
        "1/8), conv vs coordconv, 3 seeds: 32 minutes with --workers 3 on a 2-core AMD EPYC "
        "(family 26 model 2) shared with other jobs (load average 11 to 22)",
        (
            SuiteEntry(
                "gan.image_folder",
                seeds=3,
                fixed={"data_dir": "synthetic:sort_of_clevr", **_LAPTOP},  # gen-laptop's budget
            ),
        ),
    )
)
# The paper's LSUN-bedrooms GAN: "larger" (width 2), the Sort-of-CLEVR GAN's budget (the paper
# gives none for LSUN). No data ships: `--set data_dir=DIR` is required, checked at plan time.
_IF_PAPER = register_suite(
    Suite(
        "image-folder-paper",
        "gan.image_folder at width 2 (the paper's larger LSUN GAN) on 50,000 images of "
        "--set data_dir=DIR, batch 16, 50 epochs, 3 seeds: for a GPU cluster",
        (SuiteEntry("gan.image_folder", seeds=3, fixed={"width": 2.0, "eval_every": 5}),),
    )
)
# Not in `paper`: that suite runs on what the suite generates itself, this one needs the user's
# images.
