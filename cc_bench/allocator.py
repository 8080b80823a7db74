"""Keep glibc from handing big freed blocks back to the OS between training steps.

By default every multi-MB tensor is a fresh mmap whose pages fault in again on every step;
on a virtual machine that can cost more than the convolution itself (measured here: a conv
step of 9 ms took 35 ms, 24 ms of it in the kernel). Raising glibc's mmap and trim
thresholds (what MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ do, or jemalloc/tcmalloc)
keeps the memory in the process for reuse. A no-op where glibc is not the allocator.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _INT_MAX = -1, -3, 2**31 - 1


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; True if it could."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    # 1 GiB where glibc allows it, else its 32 MiB maximum on 64-bit builds.
    mmap_ok = mallopt(_M_MMAP_THRESHOLD, 1 << 30) or mallopt(_M_MMAP_THRESHOLD, 1 << 25)
    return bool(mmap_ok and mallopt(_M_TRIM_THRESHOLD, _INT_MAX))
