"""VAEs on Sort-of-CLEVR with a conv or CoordConv encoder and decoder (paper section 5).

`vae.sort_of_clevr`: the ELBO on held-out scenes, and the paper's pictures as numbers
(reconstructed and sampled scenes parsed back into objects; objects tracked along latent
interpolations). Suites: `vae-smoke` (also in `smoke`), `vae-laptop`, `vae-paper`.
"""

from cc_bench.registry import register_benchmark
from cc_bench.suites import (
    PAPER_DESCRIPTION,
    SMOKE_DESCRIPTION,
    Suite,
    SuiteEntry,
    extend_suite,
    register_suite,
)
from cc_bench.vae.configs import VAEConfig

register_benchmark(
    "vae.sort_of_clevr",
    VAEConfig,
    run="cc_bench.vae.sort_of_clevr:run",
    description="a VAE on Sort-of-CLEVR: held-out ELBO, parsed reconstructions, samples and "
    "latent interpolations (section 5)",
    metrics={
        "elbo": "higher",
        "recon": "higher",
        "kl": "neither",
        "train_elbo": "higher",
        "recon_valid_frac": "higher",
        "recon_found_frac": "higher",
        "recon_center_err_px": "lower",
        "valid_frac": "higher",
        "position_js": "lower",
        "empty_cells_frac": "lower",
        "shape_tv": "lower",
        "color_tv": "lower",
        # As for the GAN: a decoder that draws the same blur whatever z is scores 0 on the
        # plain rule, the appear/vanish share and the largest step, so those have no
        # direction; the robust rule leaves it unscored.
        "teleport_frac": "neither",
        "teleport_frac_valid": "lower",
        "interp_valid_frac": "higher",
        "valid_transitions_frac": "higher",
        "endpoint_px": "neither",
        "steps_over_4px_frac": "neither",
        "steps_over_8px_frac": "neither",
        "appear_vanish_frac": "neither",
        "mean_step_px": "neither",
        "max_jump_px": "neither",
        "params_enc": "neither",
        "params_dec": "neither",
        "sigma": "neither",
        "wall_s": "lower",
    },
    headline=("elbo", "recon_valid_frac", "teleport_frac_valid", "interp_valid_frac"),
    curve_x="epoch",
    curves=("test/elbo", "test/recon", "test/kl"),
)

_SMOKE = {
    "epochs": 1,
    "n_train": 32,
    "n_test": 16,
    "batch_size": 16,
    "width": 0.0625,
    "n_samples": 8,
    "n_pairs": 2,
    "n_frames": 4,
}
# Measured (docs/vae.md): run with `--workers 2` (one thread each). 18.5 minutes on an idle
# 2-core Zen 3 VM; 32 to 46 on a shared Zen 5 one under load.
_LAPTOP = {
    "width": 0.125,
    "n_train": 3_000,
    "n_test": 500,
    "epochs": 20,
    "batch_size": 32,
    "eval_every": 10,
    "n_samples": 256,
    "n_pairs": 16,
    "n_frames": 16,
}
register_suite(
    Suite(
        "vae-laptop",
        "vae.sort_of_clevr, conv/conv vs coordconv/coordconv, 3 seeds, width 1/8, 3,000 scenes, "
        "20 epochs: 18.5 minutes with --workers 2 on an idle 2-core AMD EPYC (family 25 model "
        "1, Zen 3); 32 to 46 on a Zen 5 one shared with other jobs",
        (SuiteEntry("vae.sort_of_clevr", seeds=3, fixed=_LAPTOP),),
    )
)
_PAPER = register_suite(
    Suite(
        "vae-paper",
        "vae.sort_of_clevr at the GAN's full width on 50,000 scenes, 50 epochs, 3 seeds: for a "
        "GPU cluster",
        (
            SuiteEntry(
                "vae.sort_of_clevr",
                seeds=3,
                fixed={"width": 1.0, "n_train": 50_000, "n_test": 5_000, "epochs": 50},
            ),
        ),
    )
)
register_suite(
    Suite(
        "vae-smoke",
        "vae.sort_of_clevr on a tiny budget, conv and CoordConv (seconds; for tests)",
        (SuiteEntry("vae.sort_of_clevr", seeds=1, fixed=_SMOKE),),
    )
)
extend_suite(
    "smoke",
    SuiteEntry("vae.sort_of_clevr", seeds=1, fixed=_SMOKE),
    description=SMOKE_DESCRIPTION,
)
extend_suite("paper", *_PAPER.entries, description=PAPER_DESCRIPTION)
