"""VAEs on Sort-of-CLEVR with a conv or CoordConv encoder and decoder (paper section 5).

`vae.sort_of_clevr`: the ELBO on held-out scenes, and the paper's pictures as numbers
(reconstructed and sampled scenes parsed back into objects; objects tracked along latent
interpolations). Suites: `vae-smoke` (also in `smoke`), `vae-laptop`, `vae-paper`.
"""

from cc_bench.registry import register_benchmark
from cc_bench.suites import SMOKE_DESCRIPTION, Suite, SuiteEntry, extend_suite, register_suite
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
        "teleport_frac": "lower",
        "appear_vanish_frac": "lower",
        "mean_step_px": "neither",
        "max_jump_px": "lower",
        "params_enc": "neither",
        "params_dec": "neither",
        "wall_s": "lower",
    },
    headline=("elbo", "teleport_frac", "recon_valid_frac"),
    curve_x="epoch",
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
