"""Images per second of one `gan.sort_of_clevr` training step, for each generator/discriminator pair.

One step is what the benchmark's loop does per batch (Liu et al. 2018, section 5's networks,
`cc_bench.nets`): G forward, D on the real and the fake batch, D's update, D on the fake
again, G's update; the real batch comes from uint8 images on the device, converted there.
The four pairs (G conv/coordconv x D conv/coordconv) run round-robin inside every repeat, so
load from other processes hits all alike; each figure is the median over repeats.

    python benchmarks/gan.py [--device cpu|cuda|auto] [--width 0.125] [--batch-size 32]
                             [--steps 5] [--repeats 5] [--threads N] [--no-channels-last]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

from cc_bench.arguments import int_at_least

KINDS = ("conv", "coordconv")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value} is not above 0")
    return value


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--device", default="cpu", help="a torch device (cpu, cuda, cuda:1, mps) or auto"
    )
    p.add_argument("--width", type=_positive_float, default=0.125)
    p.add_argument("--batch-size", type=int_at_least(1), default=32)
    p.add_argument(
        "--steps", type=int_at_least(1), default=5, help="training steps per timed repeat"
    )
    p.add_argument("--repeats", type=int_at_least(1), default=5)
    p.add_argument(
        "--threads", type=int_at_least(0), default=0, help="torch threads (0: torch's default)"
    )
    p.add_argument("--no-channels-last", action="store_true")
    args = p.parse_args()
    # heavy imports after the arguments, so that a bad one is answered at once
    import torch

    from cc_bench.envs.sort_of_clevr import generate_scenes
    from cc_bench.errors import UserError
    from cc_bench.gan.training import to_model_input, train_step, uniform_z
    from cc_bench.machine import cpu_name
    from cc_bench.nets import build_discriminator, build_generator, count_params
    from cc_bench.runtime import resolve_device

    try:
        device = resolve_device(args.device)
    except UserError as exc:  # a device this machine does not have
        p.error(f"--device: {exc}")
    except RuntimeError:  # a name torch does not know
        p.error(f"--device: {args.device!r} is not a device; use cpu, cuda, cuda:N, mps or auto")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    fmt = torch.contiguous_format if args.no_channels_last else torch.channels_last
    images, _ = generate_scenes(max(args.batch_size * args.steps, 256), seed=0)
    data = torch.from_numpy(images).to(device)  # (n, 64, 64, 3) uint8

    pairs = {}
    for gk, dk in itertools.product(KINDS, KINDS):
        torch.manual_seed(0)
        g = build_generator(gk, width=args.width).to(device, memory_format=fmt)
        d = build_discriminator(dk, width=args.width).to(device, memory_format=fmt)
        opts = (
            torch.optim.Adam(g.parameters(), lr=5e-4, betas=(0.5, 0.999)),
            torch.optim.Adam(d.parameters(), lr=1e-4, betas=(0.5, 0.999)),
        )
        pairs[(gk, dk)] = (g, d, *opts)

    def steps(g, d, opt_g, opt_d) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for k in range(args.steps):
            idx = torch.arange(k * args.batch_size, (k + 1) * args.batch_size) % len(data)
            # (B, 3, H, W) in the networks' memory format, as the training loop gives it
            real = to_model_input(data[idx.to(device)]).contiguous(memory_format=fmt)
            stats = train_step(g, d, opt_g, opt_d, real, uniform_z(args.batch_size, 256, device))
        stats.tolist()  # wait for the device
        return time.perf_counter() - start

    for parts in pairs.values():  # warm up: kernels chosen, memory allocated
        steps(*parts)
    times: dict[tuple[str, str], list[float]] = {k: [] for k in pairs}
    for _ in range(args.repeats):
        for key, parts in pairs.items():
            times[key].append(steps(*parts))

    if device.type == "cuda":
        where = torch.cuda.get_device_name(device)
    else:
        where = cpu_name() if device.type == "cpu" else str(device)  # mps: no name to ask for
    print(
        f"device: {where} ({torch.get_num_threads()} threads), torch {torch.__version__}, "
        f"width {args.width}, batch {args.batch_size}, "
        f"{'contiguous' if args.no_channels_last else 'channels-last'}, "
        f"median of {args.repeats} x {args.steps} steps"
    )
    print()
    print("| G | D | params G | params D | images/s | ms/step |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for (gk, dk), t in times.items():
        per_step = statistics.median(t) / args.steps
        g, d = pairs[(gk, dk)][:2]
        print(
            f"| {gk} | {dk} | {count_params(g):,} | {count_params(d):,} | "
            f"{args.batch_size / per_step:,.0f} | {1000 * per_step:.1f} |"
        )


if __name__ == "__main__":
    main()
