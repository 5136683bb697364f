"""Transparent huge pages for the programs' heap: glibc's ``glibc.malloc.hugetlb=1`` tunable.

XLA's CPU runtime allocates each step's temporary buffers afresh (about 2 GB for a QKFormer-3-256 train
step at batch 16), and glibc maps buffers that large with ``mmap`` and unmaps them on free, so every step
page-faults all of them in again, 4 KiB at a time. With the tunable, glibc asks the kernel for 2 MiB
pages instead (``madvise``), which cuts that cost to almost nothing (docs/performance.md §7). glibc reads
tunables only when a process starts, so a program that wants them re-executes itself once with the
tunable added to its environment, before it does any work.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

TUNABLE = "glibc.malloc.hugetlb"
OPT_OUT = "SNNJAX_HUGEPAGES"  # "0" keeps the process as it was started
THP_SETTING = "/sys/kernel/mm/transparent_hugepage/enabled"
FIRST_GLIBC_WITH_TUNABLE = (2, 35)


def glibc_version() -> tuple[int, int] | None:
    """The running C library's glibc ``(major, minor)``, or None for another C library or platform."""
    try:
        name, version = os.confstr("CS_GNU_LIBC_VERSION").split()
        major, minor = version.split(".")[:2]
        return (int(major), int(minor)) if name == "glibc" else None
    except (AttributeError, ValueError, OSError):
        return None


def kernel_thp_mode(path: str = THP_SETTING) -> str | None:
    """The kernel's transparent-huge-page mode (``always``, ``madvise`` or ``never``), or None if unknown."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    start, end = text.find("["), text.find("]")
    return text[start + 1 : end] if 0 <= start < end else None


def hugepage_environment(
    environ: Mapping[str, str], glibc: tuple[int, int] | None, thp_mode: str | None
) -> dict[str, str] | None:
    """``environ`` with ``glibc.malloc.hugetlb=1`` added to ``GLIBC_TUNABLES``, or None where a restart
    would change nothing or was declined: not glibc 2.35 or later, huge pages off in the kernel (``never``)
    or of unknown mode, the tunable already set (by the user, or by an earlier restart), or
    ``SNNJAX_HUGEPAGES=0``."""
    tunables = environ.get("GLIBC_TUNABLES", "")
    if (
        environ.get(OPT_OUT) == "0"
        or glibc is None
        or glibc < FIRST_GLIBC_WITH_TUNABLE
        or thp_mode not in ("always", "madvise")
        or TUNABLE in tunables
    ):
        return None
    return {**environ, "GLIBC_TUNABLES": ":".join(filter(None, (tunables, f"{TUNABLE}=1")))}


def hugepages_in_use(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this process runs with glibc's huge-page tunable on (as the benchmark reports it)."""
    return f"{TUNABLE}=1" in environ.get("GLIBC_TUNABLES", "").split(":") and glibc_version() is not None


def restart_with_hugepages() -> None:
    """Re-executes this program (same interpreter, flags and arguments: ``sys.orig_argv``) with glibc's
    huge-page tunable on, where :func:`hugepage_environment` says it helps; otherwise returns at once.
    Call it first thing in a program's entry point, never from library code: nothing after it runs
    twice, but nothing before it survives."""
    environ = hugepage_environment(os.environ, glibc_version(), kernel_thp_mode())
    if environ is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environ)
    except OSError:
        return
