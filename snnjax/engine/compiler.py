"""The XLA options the engine compiles its programs with, and :func:`jit_over`, how every program over
a mesh is jitted (train step, init, evaluator steps, detection).

On a CPU, XLA (jaxlib 0.10) hands matmuls, reductions and convolutions to YNNPACK by default. These
options keep YNNPACK's matmuls and reductions and give convolutions to XLA's Eigen kernels, which ran
each of QKFormer's 3×3 layers as fast or up to 2.1× faster on a 2-core CPU, weight gradients included
(docs/performance.md §9). Other platforms get none. Pass ``compiler_options("cpu")`` to your own
``jax.jit(..., compiler_options=...)`` for the same kernels.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
from jax.sharding import Mesh

from snnjax.engine.sharding import replicated

# XLA:CPU's default YNNPACK library types without "INDIVIDUAL_CONVOLUTION".
YNNPACK_WITHOUT_CONVOLUTIONS = "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"


def compiler_options(platform: str) -> dict[str, str]:
    """XLA options for a program on ``platform`` ("cpu", "gpu", ...): on "cpu", convolutions by Eigen
    rather than YNNPACK; none elsewhere."""
    if platform == "cpu":
        return {"xla_cpu_experimental_ynn_fusion_type": YNNPACK_WITHOUT_CONVOLUTIONS}
    return {}


def mesh_options(mesh: Mesh) -> dict[str, str]:
    """:func:`compiler_options` of the platform of ``mesh``'s devices."""
    return compiler_options(mesh.devices.flat[0].platform)


def jit_over(mesh: Mesh, fn: Callable, options: dict | None = None, **jit_kwargs) -> Callable:
    """``jax.jit(fn, **jit_kwargs)`` for a program over ``mesh``: results replicated on its devices, compiled
    with :func:`mesh_options` and ``options`` on top."""
    return jax.jit(
        fn, out_shardings=replicated(mesh), compiler_options={**mesh_options(mesh), **(options or {})}, **jit_kwargs
    )
