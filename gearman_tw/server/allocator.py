# -*- test-case-name: tests.test_server_allocator -*-
"""
The C allocator's handling of large payloads.

glibc gives each allocation above its mmap threshold fresh pages and returns
freed memory at the top of its heap to the kernel once more than the trim
threshold is free.  A job server makes and frees a few buffers the size of
each payload per job, so with the defaults every large job pays for its
pages again: 0.35 ms of page faults per MiB here.  L{keepFreedMemory} raises
both thresholds so freed payload buffers are reused.
"""

from __future__ import annotations

import ctypes
import ctypes.util

# mallopt parameters, from glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

#: glibc's upper limit for the mmap threshold on 64-bit systems.
MAX_MMAP_THRESHOLD = 32 << 20


def keepFreedMemory(trimThreshold: int) -> bool:
    """
    Keep up to C{trimThreshold} bytes of freed memory in the heap, and serve
    allocations below it (at most L{MAX_MMAP_THRESHOLD}) from the heap, not
    from fresh pages.  Settings are process-wide and inherited by forks.

    @return: whether the C library took the settings (it is not glibc, or
        refused them, otherwise).
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mmapThreshold = min(trimThreshold, MAX_MMAP_THRESHOLD)
    return bool(mallopt(_M_MMAP_THRESHOLD, mmapThreshold)) and bool(
        mallopt(_M_TRIM_THRESHOLD, trimThreshold)
    )
