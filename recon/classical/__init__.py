"""Classical (non-learned) reconstruction in batched torch: zero-filled, CG-SENSE, compressed
sensing with L1-wavelet or total-variation regularisers, and ESPIRiT coil maps.

Every function takes k-space ``(B, C, H, W, 2)`` (real view, fastMRI layout) and a mask
broadcastable to it, works on any device, and processes all ``B`` slices at once.  The solvers
(:mod:`recon.classical.solvers`) take any :class:`recon.ops.LinearOperator`; the wavelet
transform is :mod:`recon.ops.wavelet` (``recon.ops.Wavelet``).
"""

from recon.classical.cs import cs_tv, cs_wavelet
from recon.classical.espirit import calibration_shape, espirit_maps, sampling_pattern
from recon.classical.sense import cg_sense
from recon.classical.solvers import fista, primal_dual
from recon.classical.zero_filled import zero_filled

__all__ = [
    "zero_filled",
    "cg_sense",
    "cs_wavelet",
    "cs_tv",
    "espirit_maps",
    "calibration_shape",
    "sampling_pattern",
    "fista",
    "primal_dual",
]
