"""vae.sort_of_clevr: the models, the measures' wiring, and the benchmark through the command
line: every option path, resume after a kill, bad input one line and exit code 2."""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cc_bench, kill_after_checkpoint, killed_inside_an_epoch, last_json, run_folder

from cc_bench.envs.sort_of_clevr import SceneObject, generate_scenes, parse_scenes
from cc_bench.layers import CoordConv2d
from cc_bench.nets import TiledGenerator
from cc_bench.registry import get_benchmark
from cc_bench.tracking import Tracker
from cc_bench.vae.configs import VAEConfig
from cc_bench.vae.evaluation import EvalSet, center_errors, evaluate_scenes
from cc_bench.vae.models import VAE, build_vae
from cc_bench.vae.training import TERMS, train_vae

BENCH = "vae.sort_of_clevr"
TINY = {
    "--epochs": "2",
    "--n-train": "32",
    "--n-test": "16",
    "--batch-size": "16",
    "--width": "0.0625",
    "--n-samples": "8",
    "--n-pairs": "2",
    "--n-frames": "4",
}


def _args(**over: str) -> list[str]:
    values = {**TINY, **{"--" + k.replace("_", "-"): v for k, v in over.items()}}
    return [x for kv in values.items() for x in kv]


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC_BENCH_CACHE", str(tmp_path / "cache"))


# -- models ---------------------------------------------------------------------------------


@pytest.mark.parametrize("enc", ["conv", "coordconv"])
@pytest.mark.parametrize("dec", ["conv", "coordconv"])
def test_each_side_is_conv_or_coordconv(enc: str, dec: str) -> None:
    cfg = VAEConfig(conv="conv", enc_conv=enc, dec_conv=dec, latent=5, width=0.0625)
    vae = build_vae(cfg)
    first = next(m for m in vae.encoder.modules() if isinstance(m, torch.nn.Conv2d))
    assert isinstance(first, CoordConv2d) == (enc == "coordconv")
    assert isinstance(vae.decoder, TiledGenerator) == (dec == "coordconv")
    x = (torch.rand(3, 3, 64, 64) > 0.5).float().requires_grad_()
    mu, logvar = vae.encode(x)
    assert mu.shape == logvar.shape == (3, 5)
    out = vae(x)
    assert out["out"].shape == (3, 3, 64, 64)
    assert {k: v.shape for k, v in out.items() if k != "out"} == dict.fromkeys(
        ("recon", "kl", "elbo"), (3,)
    )
    out["elbo"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_conv_sets_both_sides_and_same_follows_it() -> None:
    cfg = VAEConfig(conv="coordconv")
    assert (cfg.encoder_conv, cfg.decoder_conv) == ("coordconv", "coordconv")
    cfg = VAEConfig(conv="coordconv", dec_conv="conv")
    assert (cfg.encoder_conv, cfg.decoder_conv) == ("coordconv", "conv")
    resolved = cfg.resolve()
    assert (resolved.enc_conv, resolved.dec_conv) == ("coordconv", "conv")
    assert resolved.resolve() == resolved
    assert (resolved.encoder_conv, resolved.decoder_conv) == ("coordconv", "conv")
    assert VAEConfig.per_conv_fields() >= {"enc_conv", "dec_conv"}


def test_the_gaussian_scale_is_learned_only_when_asked() -> None:
    def names(**kw: object) -> set[str]:
        vae = build_vae(VAEConfig(width=0.0625, latent=2, **kw))
        return {n for n, _ in vae.named_parameters() if "coder" not in n}

    assert names(likelihood="gaussian", gaussian_scale="learned") == {"log_scale"}
    assert names(likelihood="gaussian", gaussian_scale="fixed") == set()
    assert names(likelihood="bernoulli") == set()


class _Fitted(torch.nn.Module):
    """A decoder that draws one fixed image whatever z is: (B, Z) -> (B, 3, 8, 8) logits."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = torch.nn.Parameter(logits)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(len(z), *self.logits.shape)


def _fitting_vae(image: torch.Tensor, log_scale: float) -> VAE:
    """A learned-scale Gaussian VAE whose decoder already draws `image` (3, 8, 8) in {0, 1}."""
    encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4))
    vae = VAE(encoder, _Fitted(image * 24 - 12), latent=2, likelihood="gaussian", learn_scale=True)
    with torch.no_grad():
        vae.log_scale.fill_(log_scale)
    return vae


def _max_gaussian_recon(values: int, sigma: float) -> float:
    """The largest log N(x; x, sigma^2) summed over `values` pixels: the mean exactly right."""
    return values * (-math.log(sigma) - 0.5 * math.log(2 * math.pi))


def test_the_scale_floor_bounds_the_elbo_whatever_the_parameter_holds() -> None:
    image = (torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    x = image.expand(4, 3, 8, 8)
    vae = _fitting_vae(image, log_scale=-20.0)  # sigma 2e-9: the ELBO would be about 3,800
    terms = vae(x)
    mean = torch.sigmoid(terms["out"].detach())
    expected = torch.distributions.Normal(mean, 1 / 255).log_prob(x).sum((1, 2, 3))
    torch.testing.assert_close(terms["recon"].detach(), expected)
    assert terms["recon"].max().item() <= _max_gaussian_recon(3 * 8 * 8, 1 / 255) + 1e-3
    assert vae.log_sigma().item() == pytest.approx(math.log(1 / 255))
    vae.log_scale.data.fill_(math.log(0.5))  # above the floor: the parameter as it is
    assert vae.log_sigma().item() == pytest.approx(math.log(0.5))


def test_training_keeps_a_learned_scale_on_its_floor_without_warnings(tmp_path: Path) -> None:
    """A decoder that already draws the data drives sigma down every step (0.5 a step at this
    learning rate: -2.3 to below the floor's -5.5 within 7 of the 20): the parameter stays on
    the floor, and the held-out ELBO at its bound, not above it."""
    image = (torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    vae = _fitting_vae(image, log_scale=math.log(0.1))
    data = (image.permute(1, 2, 0) * 255).to(torch.uint8).expand(16, 8, 8, 3).contiguous()
    tracker = Tracker(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # float() of a tensor that requires grad warns
        fit = train_vae(
            vae, tracker, train=data, test=data[:4], epochs=5, batch_size=4,
            lr=0.5, beta=1.0, evaluate_fn=lambda epoch, last, step: {}, desc="floor",
        )  # fmt: skip
    tracker.close()
    assert vae.log_scale.item() >= math.log(1 / 255) - 1e-6
    assert fit.metrics["train/sigma"] == pytest.approx(1 / 255)
    bound = _max_gaussian_recon(3 * 8 * 8, 1 / 255)
    assert bound - 1 < fit.metrics["test/recon"] <= bound + 1e-3


# -- the measures' wiring -------------------------------------------------------------------


def test_center_errors_of_the_data_itself_are_zero_and_a_shift_shows() -> None:
    images, scenes = generate_scenes(20, 3, cache=False)
    found, err = center_errors(scenes, parse_scenes(images))
    assert found == 1.0 and err < 0.5
    shifted = np.roll(images, 3, axis=2)  # every object 3 px to the right (wrapping white)
    found, err = center_errors(scenes, parse_scenes(shifted))
    assert found == 1.0 and err == pytest.approx(3.0, abs=0.5)


def test_interpolations_start_and_end_at_the_decoded_posterior_means() -> None:
    torch.manual_seed(0)
    vae = build_vae(VAEConfig(conv="conv", width=0.0625, latent=3)).eval()
    with torch.no_grad():  # DCGAN's N(0, 0.02) start decodes every z to one grey image
        for param in vae.parameters():
            param.normal_(0, 0.3)
    images, scenes = generate_scenes(8, 2, cache=False)
    data = torch.from_numpy(images)  # uint8 (8, 64, 64, 3)
    eval_set = EvalSet(
        recon_images=data[:2],
        recon_scenes=scenes[:2],
        pair_images=(data[2:5], data[5:8]),
        reference=scenes,
        z_prior=torch.randn(2, 3),
        n_frames=5,
    )
    frames = evaluate_scenes(vae, eval_set)[1]["interpolations"]
    assert frames.shape == (3, 5, 3, 64, 64)
    with torch.no_grad():
        for end, pair in ((0, data[2:5]), (-1, data[5:8])):
            x = pair.permute(0, 3, 1, 2).float() / 255  # (3, 3, 64, 64) in [0, 1]
            mu = vae.encoder(x * 2 - 1)[:, :3]  # the posterior means, read off the encoder
            decoded = torch.sigmoid(vae.decoder(mu)) * 2 - 1
            torch.testing.assert_close(frames[:, end], decoded, atol=1e-5, rtol=0)
    assert (frames[:, 0] - frames[:, -1]).abs().amax() > 0.1


def test_center_errors_count_missing_objects_as_not_found() -> None:
    blank = np.full((1, 64, 64, 3), 255, dtype=np.uint8)
    scene = [[SceneObject("red", "circle", (20.0, 20.0), 300.0)]]
    assert center_errors(scene, parse_scenes(blank))[0] == 0.0


# -- the command line ---------------------------------------------------------------------


@pytest.mark.parametrize("scale", ["learned", "fixed"])
def test_the_benchmark_logs_every_epoch_pictures_and_a_gif(runs_dir: Path, scale: str) -> None:
    proc = cc_bench(
        "run", BENCH, "--conv", "coordconv", "--dec-conv", "conv", "--likelihood", "gaussian",
        "--gaussian-scale", scale, "--sigma", "0.2", *_args(eval_every="5"),
        "--runs-dir", str(runs_dir),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr, proc.stderr
    folder = run_folder(proc.stdout)
    metrics = last_json(proc.stdout)
    assert set(get_benchmark(BENCH).metrics) <= set(metrics)
    assert np.isfinite(metrics["elbo"])
    if scale == "fixed":
        assert metrics["sigma"] == pytest.approx(0.2, rel=1e-6)
    else:
        assert 1 / 255 <= metrics["sigma"] != pytest.approx(0.2, rel=1e-6)
    assert metrics["elbo"] == pytest.approx(metrics["recon"] - metrics["kl"], rel=1e-5)
    lines = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2]
    for line in lines:  # the ELBO and its terms, on the training batches and held out
        assert {f"{side}/{term}" for side in ("train", "test") for term in TERMS} <= set(line)
        assert line["test/elbo"] == pytest.approx(line["test/recon"] - line["test/kl"], rel=1e-5)
    assert "test/teleport_frac" not in lines[0]  # eval_every 5: measured only at the end
    assert "test/teleport_frac" in lines[1] and "train/sigma" in lines[1]
    media = {p.name for p in (folder / "media").iterdir()}
    last = lines[-1]["step"]  # pictures at the optimizer step of their epoch's end, as values
    assert (
        last > 2
        and {
            f"test_reconstructions_{last}.png",
            f"test_samples_{last}.png",
            f"test_interpolations_{last}.png",
            f"test_samples_parsed_{last}.png",
            f"interpolations_{last}.gif",
        }
        <= media
    )
    config = json.loads((folder / "config.json").read_text())
    assert json.dumps(config).count("gaussian") >= 1


def test_a_killed_run_resumes_and_ends_as_if_never_stopped(tmp_path: Path) -> None:
    args = ["run", BENCH, "--conv", "conv", *_args(epochs="4", n_train="96", eval_every="2")]
    # On the CPU: CUDA runs need not repeat bit for bit (README, "Resuming on a GPU").
    args += ["--device", "cpu"]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    reference = cc_bench(*args, "--runs-dir", str(tmp_path / "reference"), env=env)
    assert reference.returncode == 0, reference.stderr

    runs = tmp_path / "killed"
    checkpoint = kill_after_checkpoint([*args, "--runs-dir", str(runs)], runs, BENCH, env)

    resumed = cc_bench(*args, "--runs-dir", str(runs), env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    lines = (checkpoint.parent / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3, 4]
    ours, theirs = last_json(resumed.stdout), last_json(reference.stdout)
    for key in ("elbo", "train_elbo", "kl", "teleport_frac", "valid_frac"):
        assert ours[key] == pytest.approx(theirs[key], rel=1e-5, abs=1e-6), key


def test_a_run_killed_inside_an_epoch_resumes_and_ends_as_if_never_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checkpoint `train_vae` writes every `checkpoint_interval_s` inside an epoch (batch
    order, place in it, the running sums): killed right after one, the run resumes and ends as
    an uninterrupted one does. In process, with the interval at 0 (a checkpoint every batch);
    the command-line test above is killed at its first checkpoint, an epoch's end."""
    from cc_bench import layer_tuning
    from cc_bench.vae.sort_of_clevr import run

    monkeypatch.setattr(layer_tuning, "_enabled", False)  # the fixed CoordConv rule: exact
    cfg = VAEConfig(
        device="cpu",  # CUDA runs need not repeat bit for bit (README)
        conv="conv",
        enc_conv="coordconv",
        width=0.0625,
        latent=4,
        n_train=48,
        n_test=8,
        batch_size=16,
        epochs=2,
        eval_every=2,
        n_samples=8,
        n_pairs=2,
        n_frames=4,
    )  # 3 batches an epoch
    reference, resumed, saved, *folders = killed_inside_an_epoch(run, cfg, tmp_path, after=4)
    # (step, epoch, batch): inside the first epoch, at its end (epoch 1 done, batch 0), then
    # killed after batch 1 of the second, with its running sums open
    assert saved == [(1, 0, 1), (2, 0, 2), (3, 1, 0), (4, 1, 1)]
    assert set(resumed) == set(reference)
    for key, value in reference.items():  # a measure with no object found is NaN in both
        if key != "wall_s":
            assert resumed[key] == pytest.approx(value, rel=1e-6, abs=1e-7, nan_ok=True), key
    for folder in folders:
        lines = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
        assert [(x["step"], x["epoch"]) for x in lines] == [(3, 1), (6, 2)], folder.name


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--likelihood", "poisson"], "likelihood"),
        (["--n-pairs", "9", "--n-test", "16"], "n_pairs=9"),
        (["--enc-conv", "dense"], "enc"),
        (["--beta", "-1"], "beta"),
        (["--likelihood", "gaussian", "--sigma", "0.001"], "sigma=0.001"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(args: list[str], message: str) -> None:
    proc = cc_bench("run", BENCH, *args, "--runs-dir", "/nonexistent/never-written")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_training_raises_the_held_out_elbo_above_the_mean_image(tmp_path: Path) -> None:
    """Three short epochs: the held-out ELBO climbs well above its first epoch's and above the
    best model without a latent (each pixel's own Bernoulli at its training mean: an ELBO with
    KL 0, computed here from the same scenes)."""
    n_train, n_test = 256, 32
    args = _args(epochs="3", n_train=str(n_train), n_test=str(n_test), lr="3e-3", eval_every="100")
    proc = cc_bench("run", BENCH, "--conv", "conv", *args, "--runs-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in (run_folder(proc.stdout) / "metrics.jsonl").open()]
    elbos = [x["test/elbo"] for x in lines if "test/elbo" in x]
    assert len(elbos) == 3

    images, _ = generate_scenes(n_train + n_test, 0, cache=False)
    x = images.astype(np.float64) / 255  # every channel is exactly 0 or 1
    p = x[:n_train].mean(axis=0).clip(1e-3, 1 - 1e-3)  # (H, W, 3)
    test = x[n_train:]
    mean_image = float((test * np.log(p) + (1 - test) * np.log1p(-p)).sum(axis=(1, 2, 3)).mean())
    assert elbos[-1] > elbos[0] + 400, elbos
    assert elbos[-1] > mean_image + 300, (elbos, mean_image)


def test_a_nan_loss_ends_the_run_at_its_step_before_any_checkpoint(tmp_path: Path) -> None:
    """A NaN loss stops training at its own step, before the optimiser step spoils the weights
    and a checkpoint keeps them for every retry to resume from."""
    from cc_bench.errors import NonFiniteLossError

    image = (torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    vae = _fitting_vae(image, log_scale=math.log(0.1))
    forward, calls = vae.forward, []

    def third_is_nan(x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = forward(x)
        calls.append(1)
        return {**out, "recon": out["recon"] * float("nan")} if len(calls) == 3 else out

    vae.forward = third_is_nan  # type: ignore[method-assign]
    data = (image.permute(1, 2, 0) * 255).to(torch.uint8).expand(16, 8, 8, 3).contiguous()
    tracker = Tracker(tmp_path, checkpoint_interval_s=0.0)  # a checkpoint after every step
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, batch 3 of 4\) became nan at step 3"):
        train_vae(
            vae, tracker, train=data, test=data[:4], epochs=2, batch_size=4,
            lr=0.01, beta=1.0, evaluate_fn=lambda epoch, last, step: {}, desc="nan",
        )  # fmt: skip
    tracker.close()
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert saved["step"] == 2  # the last one before the NaN
    assert all(torch.isfinite(v).all() for v in saved["state"]["model"].values())


def test_the_vae_suites() -> None:
    from cc_bench.suites import expand, get_suite

    (smoke,) = get_suite("vae-smoke").entries
    assert smoke.benchmark == BENCH and smoke in get_suite("smoke").entries
    assert [(r.cfg.conv, r.cfg.seed) for r in expand(get_suite("vae-smoke"))] == [
        ("conv", 0),
        ("coordconv", 0),
    ]
    (laptop,) = get_suite("vae-laptop").entries
    runs = expand(get_suite("vae-laptop"), runs_dir="runs")
    assert sorted((r.cfg.conv, r.cfg.seed) for r in runs) == [
        (conv, seed) for conv in ("conv", "coordconv") for seed in range(3)
    ]
    # conv/conv against coordconv/coordconv: `conv` sets both sides
    assert {(r.cfg.encoder_conv, r.cfg.decoder_conv) for r in runs} == {
        ("conv", "conv"),
        ("coordconv", "coordconv"),
    }
    assert len({r.run_id for r in runs}) == 6
    (paper,) = get_suite("vae-paper").entries
    assert paper in get_suite("paper").entries and paper.seeds == 3
    assert paper.convs == ("conv", "coordconv")
    # the larger budget: wider, more scenes, longer than the laptop's, the smoke's the least
    for name in ("width", "n_train", "n_test", "epochs"):
        assert smoke.fixed[name] < laptop.fixed[name] < paper.fixed[name], name
    assert (paper.fixed["width"], paper.fixed["n_train"], paper.fixed["epochs"]) == (
        1.0,
        50_000,
        50,
    )
    assert len(expand(get_suite("vae-paper"))) == 6
