"""RL's own report section: the human-normalised aggregate curve, against a hand computation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cc_bench.report.document import Figure, Table
from cc_bench.report.extras import extra_sections
from cc_bench.report.groups import Group
from cc_bench.report.runs import RunRecord
from cc_bench.rl.scores import ATARI_SCORES

GAMES = {"ALE/MsPacman-v5": "ms_pacman", "ALE/Breakout-v5": "breakout"}


def run(env_id: str, conv: str, seed: int, score: float) -> RunRecord:
    """A finished run whose every training game scored `score`."""
    config = {"env_id": env_id, "conv": conv, "seed": seed}
    history = [{"step": s, "charts/episodic_return": score} for s in range(0, 10_001, 500)]
    return RunRecord("rl.a2c", f"{conv}_{seed}", config, "finished", history, resolved=config)


def normalised(env_id: str, score: float) -> float:
    low, high = ATARI_SCORES[GAMES[env_id]]
    return (score - low) / (high - low)


def test_aggregate_curve_is_the_iqm_of_human_normalised_scores(tmp_path: Path) -> None:
    scores = {"conv": (300.0, 400.0, 500.0, 900.0), "coordconv": (600.0, 700.0, 800.0, 2000.0)}
    groups = []
    for env_id in GAMES:
        runs = [
            run(env_id, side, seed, s / (1 if "Pac" in env_id else 50))
            for side, values in scores.items()
            for seed, s in enumerate(values)
        ]
        groups.append(Group(f"g-{env_id}", "rl.a2c", runs, title=env_id))
    (section,) = [s for s in extra_sections(groups, tmp_path) if s.title.startswith("Atari")]
    table = next(b for b in section.blocks if isinstance(b, Table))
    figure = next(b for b in section.blocks if isinstance(b, Figure))
    assert figure.path.exists() and figure.path.suffix == ".png"
    for row in table.rows:
        side = row[0]
        values = sorted(
            normalised(env_id, s / (1 if "Pac" in env_id else 50))
            for env_id in GAMES
            for s in scores[side]
        )
        # 8 runs: the interquartile mean drops the lowest 2 and the highest 2
        expected = float(np.mean(values[2:6]))
        assert row[1] == "8"
        assert float(row[3]) == pytest.approx(expected, rel=1e-3)


def test_no_section_without_both_sides(tmp_path: Path) -> None:
    runs = [run("ALE/Breakout-v5", "conv", 0, 5.0)]
    groups = [Group("g", "rl.a2c", runs, title="breakout")]
    assert not [s for s in extra_sections(groups, tmp_path) if s.title.startswith("Atari")]
