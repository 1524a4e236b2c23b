"""Keep freed memory for the next batch: glibc's malloc set up for a training loop.

Every training step allocates and frees the same large tensors (the MNIST conv net's
first feature map is 128 x 32 x 28 x 28 float32, 12.8 MB, and a step makes several).
glibc's malloc serves a block above its mmap threshold with fresh pages from the
kernel and gives heap memory above its trim threshold back; both thresholds move at
run time, and under a training step's mix of sizes they keep handing the same
activations back and forth: each batch touches its tensors' pages anew, and the kernel
zeroes every page on its first touch. Measured on MNIST conv BrainProp (bfloat16
products, batch 128, 2 threads; benchmarks/profile_epoch.py, docs/benchmarks.md section
2): 7,200-9,400 page faults and 37.8-46.7 ms a batch; with both thresholds fixed as
below, 0-72 faults and 29.5-30.2 ms.

``keep_freed_memory()`` fixes the mmap threshold at 32 MiB (glibc's largest: blocks up
to that size come from the heap) and turns trimming off (freed heap memory stays with
the process for the next batch). The process then keeps the most memory it ever held
until it exits, which is what a training process needs at every step anyway. Blocks
above 32 MiB are still mapped afresh each time: keep a batch's largest tensor under that
(``training.eval_batch_size`` defaults to 256 for this).

It changes nothing where the C library is not glibc, and nothing when the user chose the
allocator's settings: ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_`` or malloc
tunables in ``GLIBC_TUNABLES`` set, or another allocator preloaded (``LD_PRELOAD``
naming jemalloc, tcmalloc, mimalloc, ...).
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
"""mallopt's parameter numbers (glibc malloc.h)."""
MMAP_THRESHOLD = 32 * 2**20
"""glibc's largest mmap threshold on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX)."""
NEVER_TRIM = 2**31 - 1
"""A trim threshold no heap top reaches: mallopt takes an int."""
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


@functools.cache
def keep_freed_memory() -> bool:
    """Set glibc's malloc to reuse freed blocks (see the module docstring), once per
    process; returns whether it did (False: not glibc, or the user's own settings)."""
    if platform.libc_ver()[0] != "glibc" or _user_chose():
        return False
    libc = ctypes.CDLL("libc.so.6")
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                and libc.mallopt(M_TRIM_THRESHOLD, NEVER_TRIM))


def _user_chose() -> bool:
    """Whether the environment already sets the allocator up."""
    return (any(os.environ.get(name) for name in USER_SETTINGS)
            or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", "")
            or "malloc" in os.environ.get("LD_PRELOAD", ""))
