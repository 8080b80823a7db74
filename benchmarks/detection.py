"""Training images per second of the MNIST-scatter Faster R-CNN, conv against CoordConv.

The detector of `detection.mnist_scatter` (Liu et al. 2018, section 5), with plain
convolution everywhere (`conv`) and with CoordConv at the three places the paper put it and
in the box head (`coordconv`): the same canvases, the same SGD steps, timed round-robin inside every repeat
so that load from other processes hits both alike. Each figure is the median over repeats
of one training step (forward, the four losses, backward, SGD) on a batch of canvases;
the first steps of each model (oneDNN picking its kernels) are not timed.

    python benchmarks/detection.py [--device cpu|cuda|all] [--batch-size 16] [--repeats 20]
                                   [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from cc_bench.allocator import keep_freed_memory
from cc_bench.arguments import int_at_least
from cc_bench.detection.configs import DetectionConfig
from cc_bench.detection.mnist_scatter import build_model, targets_for
from cc_bench.envs.mnist_scatter import make_mnist_scatter
from cc_bench.machine import cpu_name

CONVS = ("conv", "coordconv")


def time_steps(
    device: torch.device, batch_size: int, repeats: int, warmup: int = 3
) -> dict[str, list[float]]:
    """Seconds per training step for each conv kind, interleaved step by step."""
    data = make_mnist_scatter(batch_size * 4, 0)
    mean, std = float(data.images.mean()), float(data.images.std())
    models, optimizers = {}, {}
    for conv in CONVS:
        torch.manual_seed(0)
        model = build_model(DetectionConfig(conv=conv), mean, std).to(device).train()
        models[conv] = model
        optimizers[conv] = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    times: dict[str, list[float]] = {conv: [] for conv in CONVS}
    for step in range(warmup + repeats):
        idx = [(step * batch_size + k) % len(data) for k in range(batch_size)]
        images = [data.images[k].to(device) for k in idx]
        targets = targets_for(data, idx, 1, device)
        for conv in CONVS:
            torch.manual_seed(step)  # the same RPN and RoI sampling for both
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            loss = sum(models[conv](images, targets).values())
            optimizers[conv].zero_grad(set_to_none=True)
            loss.backward()
            optimizers[conv].step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if step >= warmup:
                times[conv].append(time.perf_counter() - start)
    return times


def table(device: torch.device, batch_size: int, repeats: int) -> str:
    """A Markdown table: median ms per step and images per second, conv and CoordConv."""
    times = time_steps(device, batch_size, repeats)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    threads = "" if device.type == "cuda" else f", torch threads: {torch.get_num_threads()}"
    rows = [
        f"{name} ({device.type}{threads}), torch {torch.__version__}, batch {batch_size}, "
        f"{repeats} repeats",
        "",
        "| model | ms per step (median) | images/s | vs conv |",
        "|---|---|---|---|",
    ]
    conv_ms = statistics.median(times["conv"]) * 1000
    for conv in CONVS:
        ms = statistics.median(times[conv]) * 1000
        rows.append(f"| {conv} | {ms:.1f} | {batch_size / ms * 1000:.1f} | {ms / conv_ms:.3f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="cpu")
    parser.add_argument("--batch-size", type=int_at_least(1), default=16, help="canvases a step")
    parser.add_argument("--repeats", type=int_at_least(1), default=20, help="timed steps a model")
    parser.add_argument(
        "--threads", type=int_at_least(0), default=0, help="torch threads (0: torch's)"
    )
    args = parser.parse_args(argv)
    keep_freed_memory()
    torch.set_flush_denormal(True)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    for name in devices:
        if name == "cuda" and not torch.cuda.is_available():
            print("cuda: not available here, skipped")  # --device all
            continue
        print(table(torch.device(name), args.batch_size, args.repeats))
        print()


if __name__ == "__main__":
    main()
