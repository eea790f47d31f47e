"""Pure tensor operators in fastMRI layout: no state, no I/O, no randomness.

Complex tensors are real tensors with a trailing dimension of 2 (real, imag).  The operator
algebra (:class:`LinearOperator`, ``A @ B``, ``A + B``, ``c * A``, :func:`vstack`, ``A.H``) and
the concrete operators live in :mod:`recon.ops.linop`, SENSE in :mod:`recon.ops.sense`.
"""

from recon.ops.coils import rss, rss_complex, sens_expand, sens_reduce
from recon.ops.complex import (
    as_complex,
    as_real_view,
    complex_abs,
    complex_abs_sq,
    complex_conj,
    complex_mul,
    from_numpy,
    to_numpy,
)
from recon.ops.consistency import data_consistency, hard_dc, soft_dc, varnet_soft_dc
from recon.ops.crop import center_crop, center_crop_or_pad, center_pad, complex_center_crop
from recon.ops.fft import fft2c, fft3c, fftshift, ifft2c, ifft3c, ifftshift
from recon.ops.linop import (
    FFT,
    Adjoint,
    CoilSensitivities,
    Compose,
    FiniteDifference,
    Identity,
    LinearOperator,
    Sampling,
    Scale,
    Sum,
    VStack,
    Wavelet,
    vstack,
)
from recon.ops.sense import SenseOp, ShiftedSense, conjugate_gradient

__all__ = [
    "fft2c", "ifft2c", "fft3c", "ifft3c", "fftshift", "ifftshift",
    "complex_mul", "complex_conj", "complex_abs", "complex_abs_sq",
    "as_complex", "as_real_view", "to_numpy", "from_numpy",
    "rss", "rss_complex", "sens_expand", "sens_reduce",
    "center_crop", "complex_center_crop", "center_pad", "center_crop_or_pad",
    "hard_dc", "soft_dc", "data_consistency", "varnet_soft_dc",
    "LinearOperator", "Identity", "Adjoint", "Compose", "Sum", "Scale", "VStack", "vstack",
    "FFT", "CoilSensitivities", "Sampling", "FiniteDifference", "Wavelet",
    "SenseOp", "ShiftedSense", "conjugate_gradient",
]
