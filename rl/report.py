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

from cc_bench.config import NON_IDENTITY_FIELDS
from cc_bench.report.curves import resample
from cc_bench.report.document import Figure, Section, Table, Text
from cc_bench.report.groups import Group
from cc_bench.rl.scores import human_bounds

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


Recipe = tuple[str, tuple[str, ...], tuple[str, ...]]


def _recipe(group: Group) -> Recipe:
    """What a group trained with apart from its games and seeds: its benchmark, then its conv
    side's and its CoordConv side's configs with `env_id` and `seed` left out."""
    sides: dict[str, set[str]] = {side: set() for side in SIDES}
    for r in group.runs:
        values = dict(r.resolved or r.config)
        for key in ("env_id", "seed", *NON_IDENTITY_FIELDS):
            values.pop(key, None)
        sides.setdefault(str(values.get("conv")), set()).add(json.dumps(values, sort_keys=True))
    return group.benchmark, tuple(sorted(sides["conv"])), tuple(sorted(sides["coordconv"]))


def _differences(recipes: Sequence[Recipe]) -> list[str]:
    """For each recipe, the fields whose values set it apart from the others ("where=all"),
    read on the CoordConv side (the conv side is often shared), else on the conv side."""
    for side in (2, 1):
        values: list[dict[str, str]] = []
        for recipe in recipes:
            fields: dict[str, set[str]] = {}
            for text in recipe[side]:
                for k, v in json.loads(text).items():
                    fields.setdefault(k, set()).add(str(v))
            values.append({k: "/".join(sorted(v)) for k, v in fields.items()})
        keys = sorted({k for v in values for k in v if len({w.get(k) for w in values}) > 1})
        if keys:
            return [", ".join(f"{k}={v.get(k, '-')}" for k in keys) for v in values]
    return ["" for _ in recipes]


def aggregate_curves(groups: Sequence[Group], out_dir: Path | None) -> list[Section]:
    """A section per benchmark and recipe (A2C and DQN apart, a `where=all` comparison apart
    from a `where=first` one): IQM over games and seeds of the human-normalised return."""
    recipes: dict[Recipe, list[Group]] = {}
    for g in groups:
        recipes.setdefault(_recipe(g), []).append(g)
    sections = []
    for benchmark in dict.fromkeys(k[0] for k in recipes):
        keys = [k for k in recipes if k[0] == benchmark]
        for n, (key, label) in enumerate(zip(keys, _differences(keys), strict=True)):
            title = f"Atari, {benchmark}: human-normalised return across games"
            if len(keys) > 1:
                title += f" ({label or f'recipe {n + 1}'})"
            stem = f"rl_aggregate_{benchmark.replace('.', '_')}_{n}"
            sections += _aggregate(recipes[key], out_dir, title, stem)
    return sections


def _aggregate(
    groups: Sequence[Group], out_dir: Path | None, title: str, stem: str
) -> list[Section]:
    runs = {side: [r for g in groups for r in g.finished(side)] for side in SIDES}
    lasts = [r.history[-1]["step"] for side in SIDES for r in runs[side] if r.history]
    if not all(runs.values()) or not lasts:
        return []
    grid = np.linspace(0.0, float(min(lasts)), GRID_POINTS)
    curves = {
        side: np.array([c for r in runs[side] if (c := normalised_curve(r, grid)) is not None])
        for side in SIDES
    }
    if any(len(c) == 0 for c in curves.values()):
        return []
    games = len({str((r.resolved or r.config).get("env_id")) for side in SIDES for r in runs[side]})
    text = (
        f"Human-normalised episodic return ((score − random) / (human − random)), each run's "
        f"curve the mean of its last {SMOOTH_EPISODES} training games, at {GRID_POINTS} points "
        f"up to the shortest run's {int(grid[-1]):,} env frames; the line is the interquartile "
        f"mean over all {games} games and their seeds, the band the 25th to 75th percentile."
    )
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
