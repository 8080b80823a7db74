"""`vae.sort_of_clevr`: a VAE on Sort-of-CLEVR scenes, conv against CoordConv (paper section 5).

The paper showed, in pictures only, that a VAE whose encoder and decoder use CoordConv moves
objects smoothly along latent interpolations where a conv VAE fades them out and in. This
benchmark trains a VAE with each side conv or CoordConv (`cc_bench.nets`' GAN bodies) on
the ELBO and turns those pictures into numbers: the ELBO on held-out scenes, how well the
objects are reconstructed, whether prior samples are well-formed scenes spread over the
canvas like the data's, and whether objects teleport along interpolations between the
posterior means of held-out scenes (`cc_bench.envs.sort_of_clevr`'s parser and measures).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from cc_bench.envs.sort_of_clevr import findings_figure, parse_scenes, train_test_scenes
from cc_bench.runtime import resolve_device, seed_everything
from cc_bench.tracking import Tracker
from cc_bench.vae.configs import VAEConfig
from cc_bench.vae.evaluation import EvalSet, evaluate_scenes
from cc_bench.vae.models import build_vae, init_output_bias, param_counts
from cc_bench.vae.pictures import recon_picture, sample_picture, save_gif, strip_picture
from cc_bench.vae.training import train_vae

REFERENCE_SCENES = 5_000
"""Training scenes whose object positions and shares the prior samples are compared with."""


def run(cfg: VAEConfig, tracker: Tracker) -> dict[str, Any]:
    """Train on the ELBO, measuring every `eval_every` epochs; pictures; the final metrics."""
    device = resolve_device(cfg.device)
    seed_everything(cfg.seed)
    images, scenes = train_test_scenes(cfg.n_train, cfg.n_test, cfg.data_seed)
    data = torch.from_numpy(images).to(device)  # uint8 (N, 64, 64, 3)
    train, test = data[: cfg.n_train], data[cfg.n_train :]
    test_scenes = scenes[cfg.n_train :]
    n_recon = min(cfg.n_samples, cfg.n_test)
    k = cfg.n_pairs
    z_gen = torch.Generator().manual_seed(10_000 + cfg.seed)
    eval_set = EvalSet(
        recon_images=test[:n_recon],
        recon_scenes=test_scenes[:n_recon],
        pair_images=(test[:k], test[k : 2 * k]),
        reference=scenes[: min(cfg.n_train, REFERENCE_SCENES)],
        z_prior=torch.randn(cfg.n_samples, cfg.latent, generator=z_gen).to(device),
        n_frames=cfg.n_frames,
    )
    torch.set_flush_denormal(True)  # denormals made CPU steps several times slower (toy/)
    vae = build_vae(cfg).to(device)
    # The channel means (3,) from the uint8 array, summed in float64: no float copy of the set.
    means = images[: cfg.n_train].mean(axis=(0, 1, 2), dtype=np.float64) / 255
    init_output_bias(vae, torch.from_numpy(means))
    name = f"vae.sort_of_clevr {cfg.encoder_conv}/{cfg.decoder_conv} seed {cfg.seed}"

    def evaluate(epoch: int, last: bool, step: int) -> dict[str, float]:
        # `step`: the optimizer steps so far, the x of every logged value (W&B's too)
        if not last and epoch % cfg.eval_every:
            return {}
        metrics, pics = evaluate_scenes(vae, eval_set)
        tracker.log_image(
            "test/reconstructions", recon_picture(pics["inputs"], pics["recons"]), step
        )
        tracker.log_image("test/samples", sample_picture(pics["samples"]), step)
        tracker.log_image("test/interpolations", strip_picture(pics["interpolations"]), step)
        if last:
            gif = tracker.media_dir / f"interpolations_{step}.gif"
            save_gif(pics["interpolations"], gif)
            tracker.log_animation("test/interpolations_gif", gif, step)
            shown = pics["samples"][:16]
            figure = findings_figure(shown, parse_scenes(shown), f"{name}: prior samples, parsed")
            tracker.log_image("test/samples_parsed", figure, step)
            import matplotlib.pyplot as plt

            plt.close(figure)
        return {f"test/{key}": value for key, value in metrics.items()}

    fit = train_vae(
        vae,
        tracker,
        train=train,
        test=test,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        beta=cfg.beta,
        evaluate_fn=evaluate,
        desc=name,
    )
    m = fit.metrics  # the last epoch's: it always runs the measures
    summary: dict[str, Any] = {k.removeprefix("test/"): v for k, v in m.items() if "test/" in k}
    summary["train_elbo"] = m["train/elbo"]
    summary.update(param_counts(vae))
    if cfg.likelihood == "gaussian":
        summary["sigma"] = float(vae.log_sigma().detach().exp())
    summary["wall_s"] = round(tracker.elapsed_s, 3)
    return summary
