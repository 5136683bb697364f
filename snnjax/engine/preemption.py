"""Stopping a run cleanly on SIGTERM, the notice schedulers send before they preempt or time out a job.

In a multi-process run JAX's distributed runtime catches SIGTERM on any process and makes all of them
agree on one train step (``multihost_utils.reached_preemption_sync_point``, called at every step); in a
single process a signal handler notes the signal and the run stops at its next step. Either way the loop
saves a checkpoint at that step and raises :class:`Preempted`; the command line exits with
:data:`EXIT_STATUS` and the run resumes mid-epoch from that step.
"""

from __future__ import annotations

import signal
import threading

import jax
from jax.experimental import multihost_utils

EXIT_STATUS = 75  # EX_TEMPFAIL: a temporary failure, run the same command again


class Preempted(Exception):
    """The run stopped on SIGTERM after saving a checkpoint; the message says where and how to resume."""


class Preemption:
    """``reached(step)``: whether the run should stop before train step ``step`` (counted from 0). Use as a
    context manager around the training loop (it installs the single-process SIGTERM handler)."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self) -> Preemption:
        if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._note)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def _note(self, signum, frame) -> None:
        self.requested = True

    def reached(self, step: int) -> bool:
        """Call at every train step, with increasing ``step``: True at the step to stop before."""
        if jax.process_count() > 1:
            return multihost_utils.reached_preemption_sync_point(step)
        return self.requested
