"""gan.sort_of_clevr: the training step, the evaluation, the run end to end through the
command line (a mixed pair), and a killed run that resumes and ends as if never stopped."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cc_bench, kill_after_checkpoint, killed_inside_an_epoch, last_json, run_folder
from PIL import Image

from cc_bench.config import run_id
from cc_bench.envs.sort_of_clevr import generate_scenes
from cc_bench.gan.configs import GanConfig
from cc_bench.gan.evaluation import Reference, evaluate, interpolate, summary_metrics
from cc_bench.gan.training import sides, to_model_input, train_step
from cc_bench.nets import build_discriminator, build_generator
from cc_bench.registry import get_benchmark

BENCH = "gan.sort_of_clevr"
TINY = [
    "--width", "0.0625", "--n-train", "64", "--batch-size", "16", "--n-samples", "16",
    "--n-pairs", "2", "--interp-steps", "4",
]  # fmt: skip


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("CC_BENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def test_conv_sets_both_sides_unless_told():
    assert sides(GanConfig(conv="conv")) == ("conv", "conv")
    assert sides(GanConfig(conv="coordconv")) == ("coordconv", "coordconv")
    assert sides(GanConfig(conv="conv", g_conv="coordconv")) == ("coordconv", "conv")
    assert sides(GanConfig(conv="coordconv", d_conv="conv")) == ("coordconv", "conv")


def test_the_resolved_config_names_each_side() -> None:
    cfg = GanConfig(conv="coordconv", d_conv="conv").resolve()
    assert (cfg.g_conv, cfg.d_conv) == ("coordconv", "conv")
    assert cfg.resolve() == cfg and sides(cfg) == ("coordconv", "conv")
    # `same` and the value it stands for are one recipe: one run id.
    assert run_id(BENCH, GanConfig(conv="conv")) == run_id(
        BENCH, GanConfig(conv="conv", g_conv="conv", d_conv="conv")
    )
    assert GanConfig.per_conv_fields() >= {"g_conv", "d_conv"}


def test_gen_suites_compare_conv_with_coordconv_at_their_budgets() -> None:
    """The budgets of docs/gan.md's "Suites" table: a change on either side fails here."""
    from cc_bench.suites import expand, get_suite

    def grid(suite: str) -> tuple[set[tuple[str, str, int]], set[tuple], set[str]]:
        runs = expand(get_suite(suite))
        assert {r.benchmark for r in runs} == {BENCH}
        pairs = {(*sides(r.cfg), r.cfg.seed) for r in runs}  # (generator, discriminator, seed)
        budgets = {(r.cfg.width, r.cfg.n_train, r.cfg.epochs, r.cfg.batch_size) for r in runs}
        return pairs, budgets, {r.run_id for r in runs}

    # gen-laptop: conv/conv vs coordconv/coordconv, 3 seeds, width 1/8, 5,000 images,
    # 6 epochs, batch 16, evaluated every 2 epochs on 256 samples and 16 x 16 frames
    laptop, budget, _ = grid("gen-laptop")
    assert laptop == {(c, c, s) for c in ("conv", "coordconv") for s in range(3)}
    assert budget == {(0.125, 5_000, 6, 16)}
    evaluation = {
        (r.cfg.eval_every, r.cfg.n_samples, r.cfg.n_pairs, r.cfg.interp_steps)
        for r in expand(get_suite("gen-laptop"))
    }
    assert evaluation == {(2, 256, 16, 16)}
    # gen-paper: the paper's sizes (width 1, 50,000 images, batch 16, 50 epochs), 3 seeds
    paper, budget, _ = grid("gen-paper")
    assert paper == {(c, c, s) for c in ("conv", "coordconv") for s in range(3)}
    assert budget == {(1.0, 50_000, 50, 16)}
    # gen-smoke: width 1/16, 64 images, 1 epoch, one seed; its runs are also `smoke`'s
    smoke, budget, ids = grid("gen-smoke")
    assert smoke == {("conv", "conv", 0), ("coordconv", "coordconv", 0)}
    assert budget == {(0.0625, 64, 1, 16)}
    in_smoke = {r.run_id for r in expand(get_suite("smoke")) if r.benchmark == BENCH}
    assert in_smoke == ids


def test_model_input_and_interpolation():
    images, _ = generate_scenes(4, seed=0, cache=False)
    x = to_model_input(torch.from_numpy(images))
    assert x.shape == (4, 3, 64, 64) and x.min() == -1 and x.max() == 1
    assert torch.equal(x[0, :, 0, 0], torch.ones(3))  # white corner
    pairs = torch.randn(2, 3, 5)
    z = interpolate(pairs, 4).view(3, 4, 5)
    torch.testing.assert_close(z[:, 0], pairs[0])
    torch.testing.assert_close(z[:, -1], pairs[1])
    torch.testing.assert_close(z[:, 1], pairs[0] + (pairs[1] - pairs[0]) / 3)


def test_train_step_updates_both_networks_and_reports():
    torch.manual_seed(0)
    g, d = build_generator("coordconv", 8, width=1 / 16), build_discriminator("conv", width=1 / 16)
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-3)
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-3)
    before_g = [p.detach().clone() for p in g.parameters()]
    before_d = [p.detach().clone() for p in d.parameters()]
    images, _ = generate_scenes(8, seed=0, cache=False)
    stats = train_step(
        g, d, opt_g, opt_d, to_model_input(torch.from_numpy(images)), torch.rand(8, 8)
    )
    assert stats.shape == (4,) and torch.isfinite(stats).all()
    assert 0 < stats[2] < 1 and 0 < stats[3] < 1  # mean D(x), D(G(z)) are probabilities
    assert any(not torch.equal(a, b) for a, b in zip(before_g, g.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(before_d, d.parameters(), strict=True))


class _Replay(torch.nn.Module):
    """A "generator" that draws a given scene per latent: z[:, 0] indexes the images."""

    def __init__(self, images: np.ndarray) -> None:
        super().__init__()
        self.images = to_model_input(torch.from_numpy(images))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.images[z[:, 0].round().long()]


def test_evaluation_of_a_perfect_generator():
    images, scenes = generate_scenes(40, seed=2, cache=False)
    fixed = torch.arange(40, dtype=torch.float32)[:, None]
    # interpolations that hold one scene still: no teleports, no steps
    pairs = torch.tensor([[[3.0], [7.0]], [[3.0], [7.0]]])
    ev = evaluate(_Replay(images), fixed, pairs, Reference.of(scenes), interp_steps=5, jump_px=4.0)
    m = ev.metrics
    assert m["valid_frac"] == 1.0
    assert m["position_js"] == 0.0 and m["empty_cells_frac"] == 0.0
    assert m["shape_tv"] == 0.0 and m["color_tv"] == 0.0
    assert m["teleport_frac"] == 0.0 and m["max_jump_px"] == 0.0
    assert m["interp_valid_frac"] == 1.0
    # ... which is what a generator that ignores z does: the robust rule does not score it
    assert np.isnan(m["teleport_frac_valid"]) and m["endpoint_px"] == 0.0
    assert ev.frames.shape == (2, 5, 64, 64, 3)
    # the summary keeps the shares (the data's own: every scene has one red, one blue)
    summary = summary_metrics(ev)
    circles = np.mean([o.shape == "circle" for scene in scenes for o in scene])
    assert summary["freq_color_red"] == summary["freq_color_blue"] == 0.5
    assert summary["freq_shape_circle"] == pytest.approx(circles)
    assert summary["freq_shape_square"] == pytest.approx(1 - circles)
    assert set(summary) <= set(get_benchmark(BENCH).metrics)  # each one declared
    # z 3.0, 3.2, 3.4, 3.6, 3.8 rounds to scenes 3, 3, 3, 4, 4: one jump in 4 transitions
    pairs = torch.tensor([[[3.0]], [[3.8]]])
    m = evaluate(_Replay(images), fixed, pairs, Reference.of(scenes), interp_steps=5, jump_px=4.0)
    assert m.metrics["teleport_frac"] == pytest.approx(1 / 4)
    assert m.metrics["teleport_frac_valid"] == pytest.approx(1 / 4)
    (a, b), (c, d) = scenes[3], scenes[4]  # the objects' moves, matched by colour
    first = {o.color: o.center for o in (a, b)}
    moves = [np.hypot(*np.subtract(first[o.color], o.center)) for o in (c, d)]
    assert m.metrics["endpoint_px"] == pytest.approx(np.mean(moves), abs=1e-6)
    assert m.metrics["steps_over_4px_frac"] == pytest.approx(np.mean([x > 4 for x in moves]) / 4)


def test_run_end_to_end_mixed_pair(runs_dir: Path):
    proc = cc_bench(
        "run", BENCH, "--conv", "conv", "--g-conv", "coordconv", "--epochs", "2",
        "--eval-every", "1", "--log-every", "2", *TINY, "--runs-dir", str(runs_dir),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    folder = run_folder(proc.stdout)
    summary = last_json(proc.stdout)
    assert set(get_benchmark(BENCH).metrics) <= set(summary)
    assert summary["params_g"] == sum(
        p.numel() for p in build_generator("coordconv", width=0.0625).parameters()
    )
    assert summary["params_d"] == sum(
        p.numel() for p in build_discriminator("conv", width=0.0625).parameters()
    )
    assert 0 <= summary["valid_frac"] <= 1 and 0 <= summary["teleport_frac"] <= 1
    lines = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if "losses/d_loss" in x] == [2, 4, 6, 8]
    assert [x["step"] for x in lines if "test/valid_frac" in x] == [4, 8]
    media = {p.name for p in (folder / "media").iterdir()}
    for name in ("samples_grid_8.png", "samples_interpolations_8.png", "samples_parsed_8.png"):
        assert name in media
    assert {"samples_interpolation_4.gif", "data_grid_0.png", "data_parsed_0.png"} <= media
    for png in (folder / "media").glob("*.png"):
        w, h = Image.open(png).size
        assert w > 100 and h > 100, png.name
    assert Image.open(folder / "media" / "samples_interpolation_8.gif").size[0] > 100


def test_bad_value_is_one_line(runs_dir: Path):
    proc = cc_bench("run", BENCH, "--g-conv", "deconv", "--runs-dir", str(runs_dir))
    assert proc.returncode == 2
    assert "g_conv" in proc.stderr or "g-conv" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_killed_run_resumes_and_ends_as_if_never_stopped(tmp_path: Path):
    args = ["run", BENCH, "--conv", "coordconv", "--epochs", "4", "--eval-every", "2", *TINY]
    # On the CPU: CUDA runs need not repeat bit for bit (README, "Resuming on a GPU").
    args += ["--device", "cpu"]
    # A GAN amplifies float rounding: the layers' autotuner (which may pick another, equal
    # to float tolerance, CoordConv formulation in another process) is off, so that the
    # comparison is of the resume alone.
    env = {"CC_BENCH_CACHE": os.environ["CC_BENCH_CACHE"], "CC_BENCH_COORDCONV_AUTOTUNE": "0"}
    reference = cc_bench(*args, "--runs-dir", str(tmp_path / "reference"), env=env)
    assert reference.returncode == 0, reference.stderr

    runs = tmp_path / "killed"
    checkpoint = kill_after_checkpoint([*args, "--runs-dir", str(runs)], runs, BENCH, env)

    resumed = cc_bench(*args, "--runs-dir", str(runs), env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {checkpoint.parent.name} from step" in resumed.stderr
    ours, theirs = last_json(resumed.stdout), last_json(reference.stdout)
    for key in ("d_loss", "g_loss", "d_real", "d_fake", "valid_frac", "position_js"):
        assert ours[key] == pytest.approx(theirs[key], rel=1e-5, abs=1e-7), key
    steps = [
        json.loads(x)["step"]
        for x in (checkpoint.parent / "metrics.jsonl").read_text().splitlines()
        if "losses/d_loss" in x
    ]
    assert steps == [4, 8, 12, 16]  # each epoch's window once, none twice


def test_a_run_killed_inside_an_epoch_resumes_and_ends_as_if_never_stopped(
    tmp_path: Path, monkeypatch
):
    """The checkpoint a run writes every `checkpoint_interval_s` inside an epoch (batch order,
    place in it, the open log window): killed right after one, it resumes and ends as an
    uninterrupted run does. In process, with the interval at 0 (a checkpoint every batch)."""
    from cc_bench import layer_tuning
    from cc_bench.gan.sort_of_clevr import run

    monkeypatch.setattr(layer_tuning, "_enabled", False)  # the fixed CoordConv rule: exact
    cfg = GanConfig(
        device="cpu",  # CUDA runs need not repeat bit for bit (README)
        conv="conv",
        g_conv="coordconv",
        width=0.0625,
        n_train=64,
        batch_size=16,
        epochs=2,
        eval_every=2,
        log_every=3,
        n_samples=16,
        n_pairs=2,
        interp_steps=4,
    )  # 4 batches an epoch
    reference, resumed, saved, *folders = killed_inside_an_epoch(run, cfg, tmp_path, after=5)
    # (step, epoch, batch): inside the first epoch, at its end, then killed after batch 1 of
    # the second, with the log window (steps 5 and on) open
    assert saved == [(1, 0, 1), (2, 0, 2), (3, 0, 3), (4, 1, 0), (5, 1, 1)]
    for key in ("d_loss", "g_loss", "d_real", "d_fake", "valid_frac", "position_js"):
        assert resumed[key] == pytest.approx(reference[key], rel=1e-6, abs=1e-7), key
    for folder in folders:
        lines = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
        assert [x["step"] for x in lines if "losses/d_loss" in x] == [3, 4, 6, 8], folder.name


def test_a_nan_loss_is_caught_before_a_checkpoint_could_keep_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The losses stay on the device between log lines (no sync a step); before a checkpoint
    inside an epoch they are checked, so no checkpoint holds weights a NaN step updated."""
    import cc_bench.gan.training as training
    from cc_bench.errors import NonFiniteLossError
    from cc_bench.tracking import Tracker

    real, calls = training.train_step, []

    def second_is_nan(*args):  # noqa: ANN002, ANN202
        calls.append(1)
        out = real(*args)
        return out * float("nan") if len(calls) == 2 else out

    monkeypatch.setattr(training, "train_step", second_is_nan)
    cfg = GanConfig(n_train=16, batch_size=4, epochs=1, width=0.0625, log_every=50)
    data = torch.randint(0, 256, (16, 64, 64, 3), dtype=torch.uint8)
    tracker = Tracker(tmp_path, checkpoint_interval_s=0.0)  # a checkpoint after every step
    with pytest.raises(
        NonFiniteLossError, match=r"losses/d_loss \(in iterations 1 to 2\) became nan at step 2"
    ):
        training.train_gan(cfg, tracker, data, lambda g, z, pairs, step: {}, "nan")
    tracker.close()
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert saved["step"] == 1  # the last one before the NaN
    assert all(
        torch.isfinite(v).all() for v in saved["state"]["g"].values() if v.is_floating_point()
    )
