"""recon: accelerated MRI reconstruction in PyTorch.

fastMRI-exact operators, masks and metrics; classical and learned reconstruction behind
one call, :func:`recon.reconstruct`.
"""

__version__ = "0.1.0"

from recon import ops  # noqa: E402

__all__ = ["__version__", "ops"]
