"""The machine a measurement ran on, named as `lscpu` would: for the speed tables' headers."""

from __future__ import annotations

import platform


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
