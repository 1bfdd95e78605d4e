"""Fewer glibc malloc arenas, so that a long read's memory stays flat."""

import ctypes
import os
from typing import Callable

M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h
ARENAS = 2


def limit_malloc_arenas(load_libc: Callable[[str], ctypes.CDLL] = ctypes.CDLL) -> bool:
    """Caps glibc's malloc arenas at `ARENAS`; True if it did. Call it before threads start.

    glibc gives each thread that allocates its own arena (up to 8 per core), and each keeps what
    its thread freed: the file downloads and partition workers of an export-jobs read held about
    25 MB more that way. A `MALLOC_ARENA_MAX` set by the user wins; without glibc nothing happens.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        mallopt = load_libc("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_ARENA_MAX, ARENAS))
