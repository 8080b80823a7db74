"""RL's own report section: human-normalised learning curves aggregated across games.

The generic report has a group per game (its table and its curves against env frames) and
the "Across tasks" table of final scores. What RL researchers also read (rliable,
openrlbenchmark) is the aggregate curve: at each point of the budget, the interquartile mean
over every game and seed of the human-normalised return, so "learned faster" shows across
games. Registered in `cc_bench.rl` through `cc_bench.report.extras`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cc_bench.report.curves import resample
from cc_bench.report.document import Figure, Section, Table, Text
from cc_bench.report.groups import Group, describe_sides
from cc_bench.rl.scores import human_bounds
from cc_bench.words import count

RETURN = "charts/episodic_return"
SIDES = ("conv", "coordconv")
GRID_POINTS = 50
SMOOTH_EPISODES = 20  # each curve point: the mean of the last this-many episodes


def iqm(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """The interquartile mean: the mean of the middle 50% (scipy's 25% trimmed mean)."""
    from scipy import stats

    return stats.trim_mean(values, 0.25, axis=axis)


def normalised_curve(run: Any, grid: np.ndarray) -> np.ndarray | None:
    """A run's human-normalised return at the frames of `grid` (smoothed over episodes)."""
    rows = [(r["step"], r[RETURN]) for r in run.history if RETURN in r and "step" in r]
    bounds = human_bounds("final_return", run.resolved or run.config)
    if not rows or bounds is None:
        return None
    steps, returns = np.array(rows, dtype=float).T
    low, high = bounds
    return (resample(steps, returns, grid, SMOOTH_EPISODES) - low) / (high - low)


def _recipe(group: Group) -> str:
    """What a group trained with apart from its game (per field, each side's value)."""
    values = describe_sides(group)
    env_ids = values.pop("env_id", {})
    # The zoo's NoFrameskip-v4 games have no sticky actions: never pooled with the v5 ones.
    zoo = any(str(e).endswith("NoFrameskip-v4") for e in env_ids.values())
    values["ale_ids"] = {"coordconv": "NoFrameskip-v4" if zoo else "v5"}
    return json.dumps(values, sort_keys=True)


def _label(recipe: str, others: Sequence[str]) -> str:
    """The fields that set `recipe` apart from `others` ("where=all"), by the CoordConv
    side's value (the conv side is often shared between recipes)."""
    mine, theirs = json.loads(recipe), [json.loads(o) for o in others]
    keys = sorted(k for k in mine if any(o.get(k) != mine[k] for o in theirs))
    return ", ".join(f"{k}={mine[k].get('coordconv', next(iter(mine[k].values())))}" for k in keys)


def aggregate_curves(groups: Sequence[Group], out_dir: Path | None) -> list[Section]:
    """A section per benchmark and recipe (A2C and DQN apart, a `where=all` comparison apart
    from a `where=first` one): IQM over games and seeds of the human-normalised return."""
    recipes: dict[tuple[str, str], list[Group]] = {}
    for g in groups:
        recipes.setdefault((g.benchmark, _recipe(g)), []).append(g)
    sections = []
    for benchmark in dict.fromkeys(b for b, _ in recipes):
        mine = [r for b, r in recipes if b == benchmark]
        for n, recipe in enumerate(mine):
            title = f"Atari, {benchmark}: human-normalised return across games"
            if len(mine) > 1:
                title += f" ({_label(recipe, mine[:n] + mine[n + 1 :]) or f'recipe {n + 1}'})"
            stem = f"rl_aggregate_{benchmark.replace('.', '_')}_{n}"
            sections += _aggregate(recipes[benchmark, recipe], out_dir, title, stem)
    return sections


def _aggregate(
    groups: Sequence[Group], out_dir: Path | None, title: str, stem: str
) -> list[Section]:
    def game(r: Any) -> str:
        return str((r.resolved or r.config).get("env_id"))

    def has_scores(r: Any) -> bool:
        return human_bounds("final_return", r.resolved or r.config) is not None

    every = {side: [r for g in groups for r in g.finished(side)] for side in SIDES}
    # Only the games with published scores count, for the curves and for their frames.
    runs = {side: [r for r in every[side] if has_scores(r)] for side in SIDES}
    unscored = sorted({game(r) for side in SIDES for r in every[side] if not has_scores(r)})
    lasts = [r.history[-1]["step"] for side in SIDES for r in runs[side] if r.history]
    if not all(runs.values()) or not lasts:
        return []
    grid = np.linspace(0.0, float(min(lasts)), GRID_POINTS)
    kept = {side: [(r, normalised_curve(r, grid)) for r in runs[side]] for side in SIDES}
    curves = {side: np.array([c for _, c in kept[side] if c is not None]) for side in SIDES}
    if any(len(c) == 0 for c in curves.values()):
        return []
    scored = {game(r) for side in SIDES for r, c in kept[side] if c is not None}
    empty = sum(c is None for side in SIDES for _, c in kept[side])
    text = (
        f"Human-normalised episodic return ((score − random) / (human − random)), each run's "
        f"curve the mean of its last {SMOOTH_EPISODES} training games, at {GRID_POINTS} points "
        f"up to the shortest run's {int(grid[-1]):,} env frames; the line is the interquartile "
        f"mean over {count(len(scored), 'game')} and {'their' if len(scored) > 1 else 'its'} "
        "seeds, the band the 25th to 75th percentile."
    )
    if unscored:
        text += f" Left out, with no published random and human score: {', '.join(unscored)}."
    if empty:
        text += f" Left out: {count(empty, 'run')} that logged no finished game."
    rows = []
    for side in SIDES:
        at = iqm(curves[side])
        rows.append(
            [side, str(len(curves[side])), f"{at[len(at) // 2]:.4g}", f"{at[-1]:.4g}"]
            + [f"{at.mean():.4g}"]
        )
    blocks: list[Any] = [
        Text(text),
        Table(
            [
                "side",
                "runs",
                "IQM at half the frames",
                "IQM at the end",
                "IQM, mean over the curve",
            ],
            rows,
        ),
    ]
    if out_dir is not None:
        path = Path(out_dir) / "plots" / f"{stem}.png"
        blocks.append(Figure(_plot(grid, curves, path), text))
    return [Section(title, blocks)]


def _plot(grid: np.ndarray, curves: dict[str, np.ndarray], path: Path) -> Path:
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.subplots()
    for side, color in zip(SIDES, ("tab:blue", "tab:orange"), strict=True):
        c = curves[side]
        label = f"{'CoordConv' if side == 'coordconv' else 'conv'} (n={len(c)})"
        ax.plot(grid, iqm(c), color=color, label=label)
        ax.fill_between(grid, *np.percentile(c, [25, 75], axis=0), color=color, alpha=0.2)
    ax.set(xlabel="env frames", ylabel="human-normalised return (IQM)")
    ax.grid(alpha=0.3)
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
