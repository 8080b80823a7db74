"""Time CoordConv2d against nn.Conv2d and the naive concatenation (forward + backward).

The CoordConv layer is Section 2 / Figure 3 of Liu et al. 2018. Four variants per
shape: ``conv`` is ``nn.Conv2d(c, ...)`` (what CoordConv costs over plain
convolution), ``naive`` is ``AddCoords`` then ``nn.Conv2d(c + 2, ...)``, and
``coordconv`` is ``cc_bench.layers.CoordConv2d(c, ...)``, which times its strategies
in its first (warm-up) step and keeps the fastest (its choice is the last column);
``conv-sumbias`` is ``nn.Conv2d(c, ...)``'s function with its bias gradient a plain
sum of the output gradient, not the convolution's backward: how much of a
"sumbias" strategy's margin plain convolution could have too.
They run round-robin inside every repeat so that load from other processes hits
all alike; each time is the median over repeats of one forward + backward pass,
in wall time or (``--clock cpu``) the process's CPU time, which on a shared machine
does not count the time other processes hold the cores (exact with ``--threads 1``;
with more threads it counts the time one waits for another).

    python benchmarks/layers.py [--device cpu|cuda|all] [--repeats N] [--threads N]
                                [--shapes toy,clevr,...] [--channels-last]
                                [--clock wall|cpu] [--no-autotune]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from cc_bench import layers
from cc_bench.allocator import keep_freed_memory
from cc_bench.layers import AddCoords, CoordConv2d, _ConvolutionSumBias
from cc_bench.machine import cpu_name


@dataclass(frozen=True)
class Shape:
    """One convolution: batch, input channels, image side(s), output channels, kernel."""

    name: str
    batch: int
    channels: int
    height: int
    width: int
    out: int
    kernel: int
    stride: int = 1
    padding: int = 0

    def __str__(self) -> str:
        return (
            f"{self.name:<9} B={self.batch:<2} C={self.channels:<3} {self.height}x{self.width:<3} "
            f"out={self.out:<3} k={self.kernel} s={self.stride} p={self.padding}"
        )


# First layers of the benchmarks (toy tasks, Sort-of-CLEVR, Atari) and middle layers.
SHAPES = [
    Shape("toy-1x1", 32, 1, 64, 64, 32, 1),
    Shape("toy", 32, 1, 64, 64, 32, 3, padding=1),
    Shape("clevr", 32, 3, 64, 64, 32, 3, padding=1),
    Shape("atari", 16, 4, 84, 84, 32, 8, stride=4),
    Shape("mid", 32, 32, 32, 32, 32, 3, padding=1),
    Shape("mid", 32, 64, 16, 16, 64, 3, padding=1),
    Shape("mid", 16, 128, 16, 16, 128, 3, padding=1),
]


def machine(device: torch.device) -> str:
    """One line naming the processor (or GPU), the torch version and the thread count."""
    if device.type == "cuda":
        proc = torch.cuda.get_device_name(device)
    else:
        proc = cpu_name()
    return f"{device.type}: {proc}, torch {torch.__version__}, {torch.get_num_threads()} threads"


def make_step(
    shape: Shape, variant: str, device: torch.device, channels_last: bool = False
) -> tuple[Callable[[], None], Callable[[], None]]:
    """Return (step, sync) for one variant: step runs forward + backward once."""
    kw = dict(stride=shape.stride, padding=shape.padding, device=device)
    c, k = shape.channels, shape.kernel
    if variant in ("conv", "conv-sumbias"):
        model: nn.Module = nn.Conv2d(c, shape.out, k, **kw)
    elif variant == "naive":
        model = nn.Sequential(AddCoords(2), nn.Conv2d(c + 2, shape.out, k, **kw))
    else:
        model = CoordConv2d(c, shape.out, k, **kw)
    forward = model
    if variant == "conv-sumbias":
        geometry = ((shape.stride,) * 2, (shape.padding,) * 2, (1, 1), False, (0, 0), 1)

        def forward(x: Tensor) -> Tensor:
            return _ConvolutionSumBias.apply(x, model.weight, model.bias, geometry)

    # A first layer's input needs no gradient; a middle layer's does.
    x = torch.randn(shape.batch, c, shape.height, shape.width, device=device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(c > 4)
    grad = torch.randn_like(forward(x))
    params = list(model.parameters())

    def step() -> None:
        for p in params:
            p.grad = None
        x.grad = None
        out: Tensor = forward(x)
        out.backward(grad)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return step, sync


def time_shape(
    shape: Shape,
    device: torch.device,
    repeats: int,
    channels_last: bool = False,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[dict[str, float], str]:
    """Median milliseconds of one forward + backward pass per variant, interleaved, and the
    strategy CoordConv2d ran."""
    variants = ("conv", "naive", "coordconv", "conv-sumbias")
    layers.clear_autotune_cache()  # CoordConv2d times its strategies in its first step
    steps = {v: make_step(shape, v, device, channels_last) for v in variants}
    for step, sync in steps.values():  # warm-up, and find how many steps make ~20 ms
        for _ in range(3):
            step()
        sync()
    choices = [c for k, c in layers.autotune_choices().items() if k[0] != "batch-sum"]
    strategy = choices[-1].strategy if choices else "fixed rule"
    step, sync = steps["conv"]
    t0 = time.perf_counter()
    step()
    sync()
    inner = max(1, math.ceil(0.02 / (time.perf_counter() - t0)))
    samples: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(repeats):
        # Rotate the order too, so no variant always runs right after another.
        for v in variants[r % len(variants) :] + variants[: r % len(variants)]:
            step, sync = steps[v]
            sync()
            t0 = clock()
            for _ in range(inner):
                step()
            sync()
            samples[v].append((clock() - t0) / inner * 1e3)
    return {v: statistics.median(s) for v, s in samples.items()}, strategy


def run(
    device: torch.device,
    repeats: int,
    note: str,
    shapes: list[Shape],
    channels_last: bool,
    clock: Callable[[], float] = time.perf_counter,
) -> None:
    """Print the table for one device and the geometric means of the ratios."""
    print(f"{machine(device)}, {note}")
    columns = [
        ("conv ms", lambda t: t["conv"]),
        ("naive ms", lambda t: t["naive"]),
        ("coordconv ms", lambda t: t["coordconv"]),
        ("conv-sumbias ms", lambda t: t["conv-sumbias"]),
        ("coordconv/conv", lambda t: t["coordconv"] / t["conv"]),
        ("naive/coordconv", lambda t: t["naive"] / t["coordconv"]),
        ("coordconv/conv-sumbias", lambda t: t["coordconv"] / t["conv-sumbias"]),
    ]
    names = [name for name, _ in columns] + ["strategy"]
    header = (
        f"| {'shape':<52} | "
        + " | ".join(f"{n:<24}" if n == "strategy" else n for n in names)
        + " |"
    )
    print(header)
    print("|" + "|".join("-" * (len(p)) for p in header.split("|")[1:-1]) + "|")
    ratios: dict[str, list[float]] = {name: [] for name, _ in columns if "/" in name}
    for shape in shapes:
        t, strategy = time_shape(shape, device, repeats, channels_last, clock)
        cells = []
        for name, value in columns:
            v = value(t)
            if name in ratios:
                ratios[name].append(v)
            cells.append(f"{v:{len(name)}.3f}")
        cells.append(f"{strategy:<24}")
        print(f"| {shape!s:<52} | " + " | ".join(cells) + " |", flush=True)

    def gmean(xs: list[float]) -> float:
        return math.exp(sum(map(math.log, xs)) / len(xs))

    means = ", ".join(f"{name} = {gmean(xs):.3f}" for name, xs in ratios.items())
    print(f"geometric mean: {means}\n")


def main() -> None:
    """Parse the command line and run the benchmark on the chosen devices."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda", "all"), default="all")
    parser.add_argument("--repeats", type=int, default=40, help="timed repeats per shape")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch's default)")
    parser.add_argument(
        "--system-malloc", action="store_true", help="leave glibc malloc's settings alone"
    )
    parser.add_argument(
        "--channels-last",
        action="store_true",
        help="layers and inputs in channels-last memory format (as the toy tasks train)",
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall time, or the process's CPU time (robust on a shared machine with --threads 1)",
    )
    parser.add_argument(
        "--no-autotune",
        action="store_true",
        help="CoordConv2d uses its fixed rule instead of timing its strategies",
    )
    names = sorted({s.name for s in SHAPES})
    parser.add_argument(
        "--shapes",
        default=",".join(names),
        help=f"comma-separated shape names to time (default: all of {', '.join(names)})",
    )
    args = parser.parse_args()
    wanted = args.shapes.split(",")
    if unknown := sorted(set(wanted) - set(names)):
        parser.error(f"--shapes: unknown {', '.join(unknown)}; choose from {', '.join(names)}")
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    shapes = [s for s in SHAPES if s.name in wanted]
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    malloc = (
        "system malloc"
        if args.system_malloc or not keep_freed_memory()
        else "malloc keeps freed memory"
    )
    if args.no_autotune:
        layers.set_autotune(False)
    note = ", ".join(
        [malloc]
        + ["channels last"] * args.channels_last
        + ["fixed rule"] * args.no_autotune
        + ["CPU time"] * (args.clock == "cpu")
    )
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    devices = {
        "cpu": ["cpu"],
        "cuda": ["cuda"],
        "all": ["cpu"] + ["cuda"] * torch.cuda.is_available(),
    }
    torch.manual_seed(0)
    for d in devices[args.device]:
        run(torch.device(d), args.repeats, note, shapes, args.channels_last, clock)


if __name__ == "__main__":
    main()
