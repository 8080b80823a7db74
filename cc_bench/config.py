"""Benchmark configs: frozen dataclasses with a docstring under every field.

Every config derives from `BenchConfig`, so it has `conv`, `with_r`, `seed` and `device`;
the benchmark adds its budget and hyper-parameters. Values are checked when the config is
built (types, choices and the bounds given with `bounded`), so a wrong value is rejected
before anything runs, whether it came from the command line, a suite or Python.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

from cc_bench.errors import UserError

C = TypeVar("C", bound="BenchConfig")

# Fields that say where and how fast a run computes, not what: left out of its id, so a run
# started on a GPU can be resumed on a CPU, or with another thread count (or, for RL, with
# its games in subprocesses: the same games, the same frames).
NON_IDENTITY_FIELDS = frozenset({"device", "torch_threads", "vec_env"})


MAX_SEED = 2**31 - 1
"""The largest seed a field takes: NumPy's legacy seeding stops at 2**32 - 1, and benchmarks
seed further generators at offsets from a seed (`eval_seed + i`, say)."""


def bounded(
    default: float,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> Any:
    """A dataclass field with a default and inclusive (`ge`, `le`) or strict (`gt`, `lt`) bounds."""
    bounds = {k: v for k, v in {"ge": ge, "gt": gt, "le": le, "lt": lt}.items() if v is not None}
    return dataclasses.field(default=default, metadata={"bounds": bounds})


_BOUND_TEXT = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
_BOUND_OK = {
    "ge": lambda v, b: v >= b,
    "gt": lambda v, b: v > b,
    "le": lambda v, b: v <= b,
    "lt": lambda v, b: v < b,
}


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if _is_union(tp):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if typing.get_origin(tp) is tuple:  # "a tuple of integers", "a tuple of 2 integers"
        args = typing.get_args(tp)
        items = [a for a in args if a is not Ellipsis]
        if len(set(items)) == 1:
            n = "" if Ellipsis in args else f"{len(items)} "
            return f"a tuple of {n}{_plural(_type_name(items[0]))}"
        return "a tuple (" + ", ".join(_type_name(a) for a in items) + ")"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _plural(name: str) -> str:
    """`an integer` -> `integers`, `a number` -> `numbers`; other names as they are."""
    for article in ("an ", "a "):
        if name.startswith(article):
            return name[len(article) :] + "s"
    return name


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _matches(value: Any, tp: Any) -> bool:
    if tp is Any:
        return True
    if typing.get_origin(tp) is Literal:
        return value in typing.get_args(tp)
    if _is_union(tp):
        return any(_matches(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if typing.get_origin(tp) is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        return len(args) == len(value) and all(
            _matches(v, a) for v, a in zip(value, args, strict=True)
        )
    return isinstance(value, tp)


def _as_floats(value: Any, tp: Any) -> Any:
    """``value`` (which matches ``tp``) with every int where ``tp`` wants a number made a
    float, in tuples too: ``lr=1`` and ``lr=1.0``, ``betas=(0, 1)`` and ``(0.0, 1.0)`` are one
    config, one run id. ``value`` itself where nothing changes."""
    options = typing.get_args(tp) if _is_union(tp) else (tp,)
    if type(value) is int:
        return float(value) if float in options and int not in options else value
    shape = next((a for a in options if typing.get_origin(a) is tuple), None)
    if not isinstance(value, tuple) or shape is None:
        return value
    items = typing.get_args(shape)
    items = (items[0],) * len(value) if items[-1:] == (Ellipsis,) else items
    new = tuple(_as_floats(v, a) for v, a in zip(value, items, strict=True))
    return new if any(n is not v for n, v in zip(new, value, strict=True)) else value


@dataclass(frozen=True)
class BenchConfig:
    """What every benchmark's config has."""

    conv: Literal["conv", "coordconv"] = "coordconv"
    """Plain convolution (`conv`) or CoordConv (`coordconv`) where the benchmark's model has the choice."""
    with_r: bool = False
    """Give CoordConv layers a third coordinate channel: the distance from the centre."""
    seed: int = bounded(0, ge=0, le=MAX_SEED)
    """Random seed: initialisation and batch order (and the data split where the benchmark draws its data from the seed; some take a separate `data_seed`)."""
    device: str = "auto"
    """Where to train: `auto` (CUDA if present, else CPU), `cpu`, `cuda` or `cuda:N`."""

    # Per-conv defaults: a field listed here and left at 0 takes the value for the config's
    # conv when the run resolves it (the deconv baseline and the CoordConv model want
    # different budgets and rates); see `resolve`.
    conv_defaults: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    # Fields that choose the conv of one part of the model (a GAN's generator, a detector's
    # RPN head), each with its sentinel: {field: "same"} or {field: "auto"}. Left at the
    # sentinel, the part takes the config's `conv`; `resolve` writes that kind in, so the run
    # id and the report name every part's conv, and `conv_at` reads one part's.
    follows_conv: ClassVar[Mapping[str, str]] = {}
    # Other fields whose resolved value depends on `conv` (set by an override of `resolve`
    # or `resolve_auto`). Like those above, they differ between the two sides of one
    # comparison, so reports show them per side and do not group on them.
    conv_dependent: ClassVar[frozenset[str]] = frozenset()
    # Fields that change how a run goes but not what it trains or measures (whether missing
    # data may be downloaded, how many test images one forward pass takes). A run's id and
    # group hold them at their defaults and reports never split on them, so a killed run
    # resumes, and pairs, whatever they are set to (as `NON_IDENTITY_FIELDS` for all).
    run_time_fields: ClassVar[frozenset[str]] = frozenset()

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not _matches(value, hints[f.name]):
                raise UserError(f"invalid {f.name}={value!r}: must be {_type_name(hints[f.name])}")
            coerced = _as_floats(value, hints[f.name])  # lr=1 is lr=1.0: one run id
            if coerced is not value:
                object.__setattr__(self, f.name, value := coerced)
            bounds = f.metadata.get("bounds", {})
            if bounds and isinstance(value, float) and math.isinf(value):
                raise UserError(f"invalid {f.name}={value!r}: must be a finite number")
            for kind, bound in bounds.items():
                if (
                    isinstance(value, float)
                    and math.isnan(value)
                    or not _BOUND_OK[kind](value, bound)
                ):
                    raise UserError(
                        f"invalid {f.name}={value!r}: must be {_BOUND_TEXT[kind]} {bound}"
                    )
        if not re.fullmatch(r"auto|(cpu|cuda|mps)(:\d+)?", self.device):
            raise UserError(
                f"invalid device={self.device!r}: must be auto, cpu, cuda, cuda:N or mps"
            )

    def resolve(self: C) -> C:
        """The config the run trains with: per-conv defaults and derived values filled in.

        A field listed in `conv_defaults` and left at 0 takes the value for the config's conv,
        a field of `follows_conv` left at its sentinel takes the conv itself; then every value
        `resolve_auto` derives (an `auto` choice made from the other fields) is set. Run
        functions train with the resolved config, and a run's id is a hash of it, so a default
        or an `auto` rule changed in the code means new runs, never a finished run of the old
        recipe. Resolving a resolved config changes nothing.
        """
        out = dataclasses.replace(self)
        for name, value in self.conv_defaults.get(self.conv, {}).items():
            if getattr(out, name) == 0:
                object.__setattr__(out, name, value)
        for name in self.follows_conv:
            object.__setattr__(out, name, self.conv_at(name))
        for name, value in out.resolve_auto().items():
            if name not in {f.name for f in dataclasses.fields(out)}:
                raise TypeError(f"{type(out).__name__}.resolve_auto set unknown field {name!r}")
            object.__setattr__(out, name, value)
        if out.with_r and not out.has_coordconv():  # no CoordConv layer for it to reach
            object.__setattr__(out, "with_r", False)
        return out

    def has_coordconv(self) -> bool:
        """Whether the model has a CoordConv layer: `conv` is `coordconv`, or some part's
        field (`follows_conv`) chooses it. Without one `with_r` changes nothing, and
        `resolve` sets it False, so `--conv conv --with-r` is the plain conv run."""
        return self.conv == "coordconv" or any(
            self.conv_at(name) == "coordconv" for name in self.follows_conv
        )

    @classmethod
    def per_conv_fields(cls) -> frozenset[str]:
        """The fields whose resolved value may differ between the conv and CoordConv runs of
        one comparison: those with per-conv defaults, those that follow `conv`, the declared
        `conv_dependent` ones, and `with_r` (False on a run without CoordConv)."""
        per_conv = {k for d in cls.conv_defaults.values() for k in d}
        return frozenset(per_conv | set(cls.follows_conv) | cls.conv_dependent | {"with_r"})

    def conv_at(self, name: str) -> Literal["conv", "coordconv"]:
        """The conv kind of the part that field `name` (one of `follows_conv`) chooses: the
        field's value, or the config's `conv` where it is left at its sentinel."""
        value = getattr(self, name)
        return self.conv if value == self.follows_conv[name] else value

    def check_inputs(self) -> None:
        """Check what the config names on this machine (a data folder, say): UserError if bad.

        Called before a run starts and when `cc-bench launch` plans it, never when a finished
        run's config is read back (a report on another machine, a data folder since moved), so
        checks of files and folders belong here, not in `__post_init__`. Nothing by default.
        """

    def resolve_auto(self) -> dict[str, Any]:
        """The values of fields that this config derives from its other fields, by name.

        A benchmark whose config has a field such as `baseline="auto"` overrides this and
        returns the value `auto` stands for here (`{"baseline": "gap"}`), so that `resolve()`
        (and with it the run id and the report) holds what the run trains with. Called on the
        config with its per-conv defaults applied; return nothing for a field already set,
        so that resolving twice is resolving once.
        """
        return {}


def config_to_dict(cfg: BenchConfig) -> dict[str, Any]:
    """The config as plain JSON-ready values (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def config_from_dict(cls: type[BenchConfig], values: dict[str, Any]) -> BenchConfig:
    """Build a config from JSON values, naming any key the config does not have."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise UserError(
            f"{cls.__name__} has no field {', '.join(unknown)}; fields: {', '.join(names)}"
        )
    hints = typing.get_type_hints(cls)
    fixed = {}
    for key, value in values.items():
        if isinstance(value, list) and typing.get_origin(hints[key]) is tuple:
            value = tuple(value)
        fixed[key] = value
    return cls(**fixed)


def given_values(config: Mapping[str, Any], given: Iterable[str] | None) -> dict[str, Any]:
    """The values a run's config was built from: the fields its command line or suite set
    (`given`, as `config.json` records them), with conv and seed; every field where `given`
    is None (a run from before it was recorded, or from the Python API). Rebuilt with the
    current code's defaults, they tell whether the code still trains the run's recipe."""
    if given is None:
        return dict(config)
    keep = {*given, "conv", "seed"}
    return {k: v for k, v in config.items() if k in keep}


def _identity_values(cfg: BenchConfig) -> dict[str, Any]:
    """The config's values that make a run's identity: without `NON_IDENTITY_FIELDS`, its
    class's `run_time_fields` held at their defaults (so ids made before a field was declared
    one stay the same)."""
    values = config_to_dict(cfg)
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    for name in type(cfg).run_time_fields:
        values[name] = json.loads(json.dumps(fields[name].default))
    return {k: v for k, v in values.items() if k not in NON_IDENTITY_FIELDS}


def run_id(benchmark: str, cfg: BenchConfig) -> str:
    """A run's id: readable conv and seed, and a hash of the benchmark and what it trains with.

    The hash covers the resolved config (per-conv defaults filled in), so the id names the
    recipe the run actually trains with: when a default budget or rate changes in the code,
    the same command line plans a new run instead of finding the old one finished.
    """
    values = _identity_values(cfg.resolve())
    text = json.dumps({"benchmark": benchmark, "config": values}, sort_keys=True)
    conv = cfg.conv + ("_r" if cfg.with_r and cfg.conv == "coordconv" else "")
    return f"{conv}_seed{cfg.seed}_{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def group_name(benchmark: str, cfg: BenchConfig) -> str:
    """The W&B group of a run: the benchmark and a hash of the config as given, conv and seed
    aside, so the conv and CoordConv runs of one command line share it.

    Reports pair runs by their resolved configs instead (`cc_bench.report.groups`).
    """
    values = {k: v for k, v in _identity_values(cfg).items() if k not in {"conv", "seed"}}
    text = json.dumps({"benchmark": benchmark, "config": values}, sort_keys=True)
    return f"{benchmark}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"
