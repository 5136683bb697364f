"""snnjax: spiking neural networks for static images in JAX/Flax.

The submodules load on first use (``snnjax.neurons`` imports JAX and Flax; ``import snnjax`` alone does not),
so that a program can set up its process (snnjax.cli.hugepages) before the heavy imports.
"""

import importlib

__version__ = "0.1.0"
__all__ = ["encoding", "layers", "neurons", "surrogate"]


def __getattr__(name: str):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
