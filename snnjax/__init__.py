"""snnjax: spiking neural networks for static images in JAX/Flax."""

from snnjax import encoding, layers, neurons, surrogate

__version__ = "0.1.0"
__all__ = ["encoding", "layers", "neurons", "surrogate"]
