"""recon's benchmark suite: scripts and the report (``python -m benchmarks.run``).

Not part of the installed package: it lives beside ``recon/`` in the repository and is run
from the repository root (``recon benchmark`` finds it there).  Each section module exposes
``run(quick: bool, device: torch.device) -> dict`` (see :mod:`benchmarks.run`).
"""
