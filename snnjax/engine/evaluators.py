"""The evaluator of statistics that add up over batches, summed on the devices."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from snnjax.engine.compiler import jit_over
from snnjax.engine.programs import shared
from snnjax.engine.sharding import needs_sync, replicate


class SumEvaluator:
    """Runs the jitted ``sums(variables, batch, rng)`` (a pytree of per-batch sums, e.g. correct
    predictions and the count of real examples) over ``batches()``, adds the results up on the
    devices and hands the totals to the host-side ``summarize(totals) -> metrics`` once.

    The step compiles once per evaluator, or once for every evaluator given the same ``program_key`` and a
    ``sums`` of the same qualified name (:func:`snnjax.engine.programs.shared`); batch ``i`` gets
    ``fold_in(rng, i)``.
    """

    def __init__(
        self,
        batches: Callable[[], Iterator[Any]],
        sums: Callable[[dict, Any, jax.Array], Any],
        summarize: Callable[[Any], dict],
        mesh: Mesh,
        program_key: Hashable | None = None,
    ):
        self.batches, self.sums, self.summarize, self.mesh = batches, sums, summarize, mesh
        self.program_key = program_key
        self._shared_name = f"sum_evaluator:{getattr(sums, '__qualname__', repr(sums))}"

        def accumulate(totals, variables, batch, rng):
            return jax.tree_util.tree_map(jnp.add, totals, sums(variables, batch, rng))

        self.step = shared(
            program_key,
            self._shared_name,
            lambda: jit_over(mesh, accumulate, donate_argnums=0),
        )

    def zeros(self, variables: dict, batch: Any, rng: jax.Array) -> Any:
        """Replicated zero totals shaped like ``sums``' output (traced once per program key, not compiled)."""
        shapes = shared(
            self.program_key, self._shared_name + ":shapes", lambda: jax.eval_shape(self.sums, variables, batch, rng)
        )
        return replicate(jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), shapes), self.mesh)

    def __call__(self, variables: dict, rng: jax.Array) -> dict:
        totals = None
        for i, batch in enumerate(self.batches()):
            if totals is None:
                totals = self.zeros(variables, batch, rng)
            totals = self.step(totals, variables, batch, jax.random.fold_in(rng, i))
            if needs_sync(self.mesh):
                jax.block_until_ready(totals)
        return self.summarize(jax.device_get(totals))
