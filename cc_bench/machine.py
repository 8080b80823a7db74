"""The machine a run or a measurement uses: the CPU named as `lscpu` would (for the speed
tables' headers and `config.json`), and the CPUs a run may use."""

from __future__ import annotations

import os
import platform

CPUS_ENV = "CC_BENCH_CPUS"
"""Set by a local launch job to its share of the cores (`cc-bench launch --workers`)."""


def run_cpus() -> int:
    """The CPUs this run may use: its share under `cc-bench launch` (`CC_BENCH_CPUS`), else
    the CPUs this process may run on (a Slurm job's `--cpus-per-job`)."""
    if (share := os.environ.get(CPUS_ENV, "")).isdigit() and int(share) > 0:
        return int(share)
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_name() -> str:
    """The processor's model name with its family, model and logical CPUs (from
    /proc/cpuinfo), else what Python knows: oneDNN picks kernels per CPU, so a speed figure
    needs the exact one."""
    try:
        with open("/proc/cpuinfo") as f:
            info = [line.split(":", 1) for line in f if ":" in line]
    except OSError:
        return platform.processor() or platform.machine()
    fields: dict[str, list[str]] = {}
    for key, value in info:
        fields.setdefault(key.strip(), []).append(value.strip())
    names = fields.get("model name")
    if not names:
        return platform.processor() or platform.machine()
    family, model = fields.get("cpu family", ["?"])[0], fields.get("model", ["?"])[0]
    return f"{names[0]} (family {family} model {model}, {len(names)} logical CPUs)"


def machine_record(device: str, threads: int | None = None) -> dict[str, object]:
    """Where a run's attempt computes, for `config.json`'s `machines`: the host, the CPU
    (`cpu_name`), the CPUs the run may use, torch's version and threads, the device the
    config's `device` resolves to here and, on CUDA, the GPU's name. Speed figures (`wall_s`,
    steps or images per second) are only comparable between runs with the same record.
    `threads`: what the run will set (a config's `torch_threads`), if not torch's now."""
    import torch

    from cc_bench.runtime import resolve_device

    resolved = resolve_device(device)
    record: dict[str, object] = {
        "host": platform.node(),
        "cpu": cpu_name(),
        "cpus": run_cpus(),
        "torch": torch.__version__,
        "threads": threads or torch.get_num_threads(),
        "device": str(resolved),
    }
    if resolved.type == "cuda":
        record["gpu"] = torch.cuda.get_device_name(resolved)
    return record
