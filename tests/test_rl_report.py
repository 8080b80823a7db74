"""RL's own report section: the human-normalised aggregate curve, against a hand computation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cc_bench.report.document import Figure, Table, Text
from cc_bench.report.extras import extra_sections
from cc_bench.report.groups import Group
from cc_bench.report.runs import RunRecord
from cc_bench.rl.report import SIDES
from cc_bench.rl.scores import ATARI_SCORES, human_bounds

GAMES = {"ALE/MsPacman-v5": "ms_pacman", "ALE/Breakout-v5": "breakout"}


def run(
    env_id: str, conv: str, seed: int, score: float, bench: str = "rl.a2c", where: str = "first"
) -> RunRecord:
    """A finished run whose every training game scored `score`."""
    config = {"env_id": env_id, "conv": conv, "seed": seed, "where": where}
    history = [{"step": s, "charts/episodic_return": score} for s in range(0, 10_001, 500)]
    return RunRecord(bench, f"{conv}_{seed}", config, "finished", history, resolved=config)


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


def test_a_game_without_human_scores_is_named_as_left_out(tmp_path: Path) -> None:
    """Pac-Man (not Ms. Pac-Man) has no published random and human score: its runs are not in
    the human-normalised curve, and the text counts and names the games as they are."""
    assert human_bounds("final_return", {"env_id": "ALE/Pacman-v5"}) is None
    groups = []
    for env_id in ("ALE/Breakout-v5", "ALE/Pacman-v5"):
        runs = [run(env_id, side, s, 10.0) for side in SIDES for s in range(2)]
        if env_id == "ALE/Pacman-v5":  # shorter runs: they must not cut Breakout's curve short
            for r in runs:
                r.history = r.history[:3]
        groups.append(Group(env_id, "rl.a2c", runs))
    (section,) = [s for s in extra_sections(groups, tmp_path) if s.title.startswith("Atari")]
    text = next(b for b in section.blocks if isinstance(b, Text)).text
    assert "over 1 game and its seeds" in text and "up to the shortest run's 10,000 env" in text
    assert "Left out, with no published random and human score: ALE/Pacman-v5." in text
    assert "logged no finished game" not in text
    table = next(b for b in section.blocks if isinstance(b, Table))
    assert [row[1] for row in table.rows] == ["2", "2"]  # Breakout's two seeds a side


def test_no_section_without_both_sides(tmp_path: Path) -> None:
    runs = [run("ALE/Breakout-v5", "conv", 0, 5.0)]
    groups = [Group("g", "rl.a2c", runs, title="breakout")]
    assert not [s for s in extra_sections(groups, tmp_path) if s.title.startswith("Atari")]


def test_a2c_dqn_and_each_where_are_aggregated_apart(tmp_path: Path) -> None:
    """Each benchmark and recipe gets its own section, over its own games: A2C and DQN are
    not pooled, nor a where=all comparison with a where=first one (which share conv runs)."""
    groups = []
    conv = {e: [run(e, "conv", s, 100.0 * (s + 1)) for s in range(2)] for e in GAMES}
    for env_id in GAMES:
        for where, score in (("first", 1000.0), ("all", 2000.0)):
            coord = [run(env_id, "coordconv", s, score, where=where) for s in range(2)]
            groups.append(Group(f"a2c-{env_id}-{where}", "rl.a2c", conv[env_id] + coord))
    dqn = [run("ALE/Breakout-v5", side, s, 10.0, "rl.dqn") for side in SIDES for s in range(2)]
    groups.append(Group("dqn", "rl.dqn", dqn))
    sections = [s for s in extra_sections(groups, tmp_path) if s.title.startswith("Atari")]
    titles = [s.title for s in sections]
    assert titles == [
        "Atari, rl.a2c: human-normalised return across games (where=first)",
        "Atari, rl.a2c: human-normalised return across games (where=all)",
        "Atari, rl.dqn: human-normalised return across games",
    ]
    for section, games, coord_score in zip(
        sections, (2, 2, 1), (1000.0, 2000.0, 10.0), strict=True
    ):
        text = next(b for b in section.blocks if isinstance(b, Text)).text
        assert (
            f"over {games} games and their seeds" in text
            if games > 1
            else "over 1 game and its seeds" in text
        )
        assert "Left out" not in text
        table = next(b for b in section.blocks if isinstance(b, Table))
        rows = {row[0]: row for row in table.rows}
        assert rows["conv"][1] == rows["coordconv"][1] == str(2 * games)
        played = list(GAMES) if games == 2 else ["ALE/Breakout-v5"]  # DQN: Breakout only
        # every CoordConv run of a game scores alike: the IQM is the mean over the games
        expected = np.mean([normalised(e, coord_score) for e in played])
        assert float(rows["coordconv"][3]) == pytest.approx(expected, rel=1e-3)
    plots = sorted(p.name for p in (tmp_path / "plots").glob("rl_aggregate*.png"))
    assert plots == [
        "rl_aggregate_rl_a2c_0.png",
        "rl_aggregate_rl_a2c_1.png",
        "rl_aggregate_rl_dqn_0.png",
    ]


def test_zoo_ids_and_v5_ids_are_aggregated_apart(tmp_path: Path) -> None:
    """Breakout with sticky actions (v5) and without (the zoo's NoFrameskip-v4): two recipes."""
    groups = []
    for env_id, score in (("ALE/Breakout-v5", 10.0), ("BreakoutNoFrameskip-v4", 20.0)):
        runs = [run(env_id, side, s, score) for side in SIDES for s in range(2)]
        groups.append(Group(env_id, "rl.a2c", runs))
    sections = [s for s in extra_sections(groups, tmp_path) if s.title.startswith("Atari")]
    assert [s.title for s in sections] == [
        "Atari, rl.a2c: human-normalised return across games (ale_ids=v5)",
        "Atari, rl.a2c: human-normalised return across games (ale_ids=NoFrameskip-v4)",
    ]
    low, high = ATARI_SCORES["breakout"]
    for section, score in zip(sections, (10.0, 20.0), strict=True):
        table = next(b for b in section.blocks if isinstance(b, Table))
        rows = {row[0]: row for row in table.rows}
        assert float(rows["coordconv"][3]) == pytest.approx((score - low) / (high - low), rel=1e-3)
