"""`toy_table.md`: one row per task, split and model, from the current recipe's runs only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cc_bench.config import config_to_dict, run_id
from cc_bench.toy.configs import ClassificationConfig
from cc_bench.toy.table import toy_table

BENCH = "toy.classification"


def write_run(suite_dir: Path, cfg: ClassificationConfig, acc: float, **resolved: Any) -> Path:
    """A finished run folder; `resolved` overrides what the current code resolves (an older
    recipe: a default that has changed since)."""
    values = {**config_to_dict(cfg.resolve()), **resolved}
    rid = run_id(BENCH, cfg) if not resolved else f"{cfg.conv}_seed{cfg.seed}_old"
    run_dir = suite_dir / BENCH / rid
    run_dir.mkdir(parents=True)
    meta = {"benchmark": BENCH, "run_id": rid, "config": config_to_dict(cfg), "resolved": values}
    (run_dir / "config.json").write_text(json.dumps(meta))
    summary = {"status": "finished", "metrics": {"test_acc": acc, "wall_s": 10.0}}
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir


def row(table: str, split: str, model: str) -> list[str]:
    (line,) = [
        x for x in table.splitlines() if x.startswith(f"| classification | {split} | {model} |")
    ]
    return [c.strip() for c in line.strip("|").split("|")]


def test_older_recipes_are_counted_not_pooled(tmp_path: Path) -> None:
    for seed, acc in enumerate((0.5, 0.7)):
        cfg = ClassificationConfig(conv="conv", seed=seed, split="quadrant")
        write_run(tmp_path, cfg, acc)
        write_run(tmp_path, cfg, 0.0, lr=0.02)  # the same config when conv's lr was 0.02
    table = toy_table(tmp_path)
    assert row(table, "quadrant", "conv baseline")[4:6] == ["60.0% (50.0%..70.0%)", "2"]
    assert "2 finished runs of older recipes" in table


def test_each_current_recipe_has_its_own_row(tmp_path: Path) -> None:
    # `launch toy` and `launch toy --set batch_size=32`: two CoordConv recipes, one conv
    for seed in range(2):
        write_run(tmp_path, ClassificationConfig(seed=seed, split="uniform"), 1.0)
        write_run(tmp_path, ClassificationConfig(seed=seed, split="uniform", batch_size=32), 0.9)
        write_run(tmp_path, ClassificationConfig(conv="conv", seed=seed, split="uniform"), 0.2)
    table = toy_table(tmp_path)
    assert row(table, "uniform", "CoordConv (batch_size=16)")[4] == "100.0% (100.0%..100.0%)"
    assert row(table, "uniform", "CoordConv (batch_size=32)")[4] == "90.0% (90.0%..90.0%)"
    assert row(table, "uniform", "conv baseline")[4:6] == ["20.0% (20.0%..20.0%)", "2"]
    assert row(table, "quadrant", "CoordConv")[4] == "no finished run"
    assert "older recipes" not in table
