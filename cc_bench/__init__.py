"""cc_bench: CoordConv against plain convolution, domain by domain (Liu et al., NeurIPS 2018).

The layers are importable from here (`from cc_bench import CoordConv2d`); they are loaded on
first use, so `import cc_bench` and `cc-bench --help` stay fast (no torch at import time).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAYERS = (
    "AddCoords",
    "CoordConv1d",
    "CoordConv2d",
    "CoordConv3d",
    "CoordConvTranspose2d",
    "coordconvify",
)
__all__ = [*_LAYERS, "__version__"]

if TYPE_CHECKING:
    from cc_bench.layers import (  # noqa: F401
        AddCoords,
        CoordConv1d,
        CoordConv2d,
        CoordConv3d,
        CoordConvTranspose2d,
        coordconvify,
    )


def __getattr__(name: str) -> Any:
    if name in _LAYERS:
        return getattr(importlib.import_module("cc_bench.layers"), name)
    raise AttributeError(f"module 'cc_bench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAYERS))
