"""ESPIRiT coil-sensitivity estimation (Uecker et al., MRM 71:990, 2014) in batched torch.

Steps, per slice: (1) the calibration region is the fully sampled centre of the mask, found by
:func:`calibration_shape`; (2) the block-Hankel calibration matrix of ``kernel_width x
kernel_width`` patches over all coils is decomposed by SVD and the right singular vectors with
singular values above ``threshold * s_max`` are kept as k-space kernels; (3) the image-domain
operator ``G(r) = sum_k v_k(r) v_k(r)^H`` (``v_k`` the inverse FFT of kernel ``k`` zero-padded to
the image size, scaled by ``H W / kernel_width^2``) is formed at every pixel; (4) the maps are its
leading eigenvectors, phase-referenced to the first coil and set to zero where the eigenvalue is
not above ``crop``.  This follows sigpy's ``EspiritCalib`` step by step, so the two agree up to
the per-pixel phase ambiguity of eigenvectors.

``G`` is never built from one full-size FFT per kernel: each entry ``G_cd(r)`` is a
trigonometric polynomial whose frequencies span only ``2 kernel_width - 1`` points per axis, so
its coefficients are computed on a ``2 kernel_width`` grid and evaluated at the image pixels,
row block by row block, with two small matrix products.  The leading eigenvectors come from
batched power iterations on ``G^4`` (8 by default, equivalent to 32 plain ones;
sigpy runs 100 plain ones) on every other row and column, refined by 3 plain iterations at
full resolution, or ``torch.linalg.eigh`` at every pixel.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from recon.classical._checks import check_kspace, check_mask, check_positive
from recon.ops._checks import sampled_points
from recon.ops.complex import as_complex, as_real_view
from recon.ops.fft import fft2c, ifft2c

__all__ = ["espirit_maps", "calibration_shape", "sampling_pattern"]


def sampling_pattern(kspace: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Boolean ``(B, H, W)`` map of the sampled k-space points.

    Args:
        kspace: ``(B, C, H, W, 2)``.
        mask: anything broadcastable to ``kspace``; ``None`` infers the pattern from the
            non-zero points of ``kspace`` (any coil).
    """
    full = kspace if mask is None else torch.broadcast_to(mask != 0, kspace.shape)
    return sampled_points(full)[:, 0]


def _centered_run(line: torch.Tensor, center: int) -> int:
    """Longest run of True in ``line`` centred on ``center`` in fastMRI/sigpy crop convention."""
    if not bool(line[center]):
        return 0
    n = line.numel()
    left = center
    while left > 0 and bool(line[left - 1]):
        left -= 1
    right = center
    while right < n - 1 and bool(line[right + 1]):
        right += 1
    width = right - left + 1
    while width > 0:
        start = center - width // 2
        if start >= left and start + width - 1 <= right:
            return width
        width -= 1
    return 0


def calibration_shape(pattern: torch.Tensor) -> tuple[int, int]:
    """Largest centred rectangle ``(h, w)`` that is fully sampled in every slice.

    A rectangle of size ``(h, w)`` is centred as a crop is: it starts at
    ``(H // 2 - h // 2, W // 2 - w // 2)``.

    Args:
        pattern: boolean ``(H, W)`` or ``(B, H, W)`` sampling pattern.

    Returns:
        ``(h, w)``; ``(0, 0)`` when the centre point is not sampled.
    """
    if pattern.ndim == 2:
        pattern = pattern.unsqueeze(0)
    full = pattern.all(dim=0).cpu()
    height, width = full.shape
    cy, cx = height // 2, width // 2
    h = _centered_run(full[:, cx], cy)
    w = _centered_run(full[cy, :], cx)
    while h > 0 and w > 0:
        top, left = cy - h // 2, cx - w // 2
        if bool(full[top : top + h, left : left + w].all()):
            return h, w
        if h >= w:
            h -= 1
        else:
            w -= 1
    return 0, 0


def _parse_calib_width(calib_width: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(calib_width, int) and not isinstance(calib_width, bool):
        return calib_width, calib_width
    try:
        pair = tuple(int(v) for v in calib_width)  # type: ignore[union-attr]
    except TypeError as err:
        raise TypeError(f"calib_width must be an int or a pair of ints, got {calib_width!r}") from err
    if len(pair) != 2:
        raise ValueError(f"calib_width must be an int or a pair of ints, got {calib_width!r}")
    return pair  # type: ignore[return-value]


def _crop_center(x: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    h, w = x.shape[-2:]
    top, left = h // 2 - shape[0] // 2, w // 2 - shape[1] // 2
    return x[..., top : top + shape[0], left : left + shape[1]]


def _phases(n_freq: int, size: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``exp(2 pi i d (r - size // 2) / size)`` for ``d = -(n_freq // 2) .. n_freq // 2``: ``(n_freq, size)``."""
    half = n_freq // 2
    d = torch.arange(-half, half + 1, dtype=torch.float64, device=device)
    r = torch.arange(size, dtype=torch.float64, device=device) - size // 2
    angle = 2 * math.pi * torch.outer(d, r) / size
    return torch.polar(torch.ones_like(angle), angle).to(dtype)


def _leading_eigenpairs(block: torch.Tensor, max_iter: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Leading eigenvector ``(..., C)`` and eigenvalue ``(...)`` of Hermitian PSD ``(..., C, C)``.

    Power iterations from the all-ones vector (as sigpy's ``EspiritCalib``) on ``G^4`` (two
    trace-normalised squarings first, which cost about as much as ``C / 4`` iterations), so
    ``max_iter`` iterations converge as ``4 max_iter`` plain ones; the eigenvalue is then
    ``||G v||``.  ``max_iter == 0`` uses ``torch.linalg.eigh``.
    """
    if max_iter == 0:
        values, vectors = torch.linalg.eigh(0.5 * (block + block.conj().transpose(-1, -2)))
        return vectors[..., -1], values[..., -1]
    tiny = torch.finfo(block.real.dtype).tiny
    power = block
    for _ in range(2):
        power = power @ power
        trace = power.diagonal(dim1=-2, dim2=-1).real.sum(-1).clamp_min(tiny)
        power = power / trace[..., None, None]
    vec = torch.ones(*block.shape[:-1], 1, dtype=block.dtype, device=block.device)
    for _ in range(max_iter):
        vec = power @ vec
        vec = vec / vec.abs().pow(2).sum(dim=(-2, -1), keepdim=True).sqrt().clamp_min(tiny)
    value = (block @ vec).abs().pow(2).sum(dim=(-2, -1)).sqrt()
    return vec[..., 0], value


_REFINE_ITER = 3


def _refine(block: torch.Tensor, start: torch.Tensor, iterations: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain power iterations on ``(..., C, C)`` from ``start`` ``(..., C)``; the eigenvalue is
    the norm of the last product (as sigpy's ``PowerMethod``)."""
    tiny = torch.finfo(block.real.dtype).tiny
    vec = start.unsqueeze(-1)
    vec = vec / vec.abs().pow(2).sum(dim=(-2, -1), keepdim=True).sqrt().clamp_min(tiny)
    value = torch.zeros(block.shape[:-2], dtype=block.real.dtype, device=block.device)
    for _ in range(iterations):
        vec = block @ vec
        value = vec.abs().pow(2).sum(dim=(-2, -1)).sqrt()
        vec = vec / value.clamp_min(tiny)[..., None, None]
    return vec[..., 0], value


def espirit_maps(
    kspace: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    calib_width: int | Sequence[int] | None = None,
    max_calib_width: int = 24,
    kernel_width: int | None = None,
    threshold: float = 0.02,
    crop: float = 0.95,
    max_iter: int = 8,
    return_eigenvalues: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """ESPIRiT sensitivity maps (one set) from the fully sampled k-space centre.

    Args:
        kspace: multi-coil k-space ``(B, C, H, W, 2)``.
        mask: sampling mask broadcastable to ``kspace`` (``None``: the non-zero points).
        calib_width: size of the calibration region, an int (square) or ``(h, w)``; ``None``
            takes the largest centred fully sampled rectangle of the mask, each side capped at
            ``max_calib_width``.  sigpy's ``EspiritCalib(calib_width=24)`` corresponds to 24.
        max_calib_width: cap on each side of the automatic calibration region.
        kernel_width: ESPIRiT kernel size; ``None`` takes 6 (sigpy's default) when the
            narrow side of the calibration region has at least 12 points, else
            ``min(5, side - 4)`` (at least 3): on the validation data a width of 6 with 9-10
            centre lines (fastMRI's 8x masks) gives maps bad enough to fall below zero-filled,
            5 gives the best maps, and 6 is best from 12 lines on (docs/reconstruct.md).
        threshold: singular values above ``threshold * s_max`` define the signal subspace.
        crop: maps are zero where the leading eigenvalue is not above ``crop``.
        max_iter: power iterations on ``G^4`` for the leading eigenvector of each pixel (8
            converge like 32 plain iterations; sigpy runs 100 plain ones); 0 uses an exact
            eigendecomposition, slower on the CPU.
        return_eigenvalues: also return the leading eigenvalues ``(B, H, W)``.

    Returns:
        Maps ``(B, C, H, W, 2)`` of unit norm over coils (or zero), coil 0 real and >= 0;
        with ``return_eigenvalues``, the pair ``(maps, eigenvalues)``.

    Raises:
        ValueError: if the fully sampled centre is smaller than ``kernel_width`` (no
            calibration data), or an argument is out of range.

    Example:
        >>> kspace = torch.randn(1, 4, 64, 64, 2)
        >>> espirit_maps(kspace).shape
        torch.Size([1, 4, 64, 64, 2])
    """
    kspace = check_kspace(kspace)
    mask = check_mask(mask, kspace)
    if kernel_width is not None:
        check_positive("kernel_width", kernel_width, integer=True)
    check_positive("max_calib_width", max_calib_width, integer=True)
    check_positive("max_iter", max_iter, allow_zero=True, integer=True)
    check_positive("threshold", threshold, allow_zero=True)
    check_positive("crop", crop, allow_zero=True)
    if threshold >= 1:
        raise ValueError(f"threshold must be in [0, 1), got {threshold!r}")
    batch, coils, height, width, _ = kspace.shape
    calib, kernel_width = _calibration_region(kspace, mask, calib_width, max_calib_width, kernel_width)
    cdtype = torch.complex128 if kspace.dtype == torch.float64 else torch.complex64
    data = as_complex(kspace if mask is None else kspace * mask).to(cdtype)
    coef = _gram_coefficients(_crop_center(data, calib), kernel_width, threshold)  # (B, C, C, F, F)
    n_freq = coef.shape[-1]
    phase_h = _phases(n_freq, height, cdtype, kspace.device)  # (F, H)
    phase_w = _phases(n_freq, width, cdtype, kspace.device)  # (F, W)
    partial = torch.einsum("bcdfg,gx->bcdfx", coef, phase_w)  # (B, C, C, F, W)
    maps = torch.zeros(batch, coils, height, width, dtype=cdtype, device=kspace.device)
    eig = torch.zeros(batch, height, width, dtype=kspace.dtype, device=kspace.device)
    for b in range(batch):
        _leading_maps(partial[b], phase_h, max_iter, crop, maps[b], eig[b])
    out = as_real_view(maps).to(kspace.dtype)
    return (out, eig) if return_eigenvalues else out


def _calibration_region(
    kspace: torch.Tensor, mask: torch.Tensor | None, calib_width: int | Sequence[int] | None,
    max_calib_width: int, kernel_width: int | None,
) -> tuple[tuple[int, int], int]:
    """``((ch, cw), kernel_width)``: the calibration region and the kernel size, or ValueError."""
    height, width = kspace.shape[-3:-1]
    if calib_width is None:
        found = calibration_shape(sampling_pattern(kspace, mask))
        calib = (min(found[0], max_calib_width), min(found[1], max_calib_width))
        source = f"the fully sampled centre of the mask is {found[0]} x {found[1]}"
    else:
        calib = _parse_calib_width(calib_width)
        source = f"calib_width is {calib}"
    auto = kernel_width is None
    if auto:
        kernel_width = 6 if min(calib) >= 12 else max(3, min(5, min(calib) - 4))
    if min(calib) < kernel_width or calib[0] > height or calib[1] > width or (auto and min(calib) < 6):
        need = 6 if auto else kernel_width
        raise ValueError(
            f"ESPIRiT needs a calibration region of at least {need} fully sampled points per side "
            f"within the image ({height} x {width}), but {source}; pass sens_maps, a mask with a "
            "fully sampled centre, or a smaller kernel_width"
        )
    return calib, kernel_width


def _gram_coefficients(calib_data: torch.Tensor, k: int, threshold: float) -> torch.Tensor:
    """Fourier coefficients ``(B, C, C, 2k - 1, 2k - 1)`` of the image-domain matrix
    ``G(r) = sum_k v_k(r) v_k(r)^H`` of the ESPIRiT kernels of ``calib_data`` ``(B, C, ch, cw)``."""
    batch, coils = calib_data.shape[:2]
    # Calibration matrix: rows are patches, columns (coil, ky, kx) as in sigpy.
    patches = calib_data.unfold(2, k, 1).unfold(3, k, 1)  # (B, C, nby, nbx, k, k)
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(batch, -1, coils * k * k)
    _, sing, vh = torch.linalg.svd(patches, full_matrices=False)
    keep = sing > threshold * sing[:, :1]  # (B, K)
    kernels = (vh * keep.unsqueeze(-1)).reshape(batch, -1, coils, k, k)
    # Kernel images on a small 2k x 2k grid, the Fourier coefficients of G on it.
    grid = 2 * k
    small = kernels.new_zeros(*kernels.shape[:3], grid, grid)
    off = grid // 2 - k // 2
    small[..., off : off + k, off : off + k] = kernels
    img = as_complex(ifft2c(as_real_view(small)))  # (B, K, C, P, P)
    gram = torch.einsum("bkcxy,bkdxy->bcdxy", img, img.conj())
    coef = as_complex(fft2c(as_real_view(gram)))  # (B, C, C, P, P)
    coef = coef[..., grid // 2 - (k - 1) : grid // 2 + k, grid // 2 - (k - 1) : grid // 2 + k]
    return coef * (grid / k**2)


def _leading_maps(
    partial: torch.Tensor, phase_h: torch.Tensor, max_iter: int, crop: float, maps: torch.Tensor, eig: torch.Tensor
) -> None:
    """One slice: the leading eigenvector (phase of coil 0 removed, zero where the eigenvalue is
    not above ``crop``) and eigenvalue of ``G`` at every pixel, written into ``maps`` ``(C, H, W)``
    and ``eig`` ``(H, W)``; ``G`` is evaluated in blocks of rows from ``partial`` ``(C, C, F, W)``."""
    coils, width = partial.shape[0], partial.shape[-1]
    height = phase_h.shape[1]
    rows = max(1, (1 << 22) // max(1, coils * coils * width))  # ~4M matrix entries per block
    coarse = max_iter > 0 and min(height, width) >= 16
    if coarse:
        # Leading eigenvectors on every other row and column, then (below) a few plain
        # power iterations at full resolution started from them: G is smooth, so the
        # start is already close and 3 iterations converge where the eigenvalue gap is
        # large - a quarter of the cost of solving every pixel from scratch.
        start = torch.empty(height, width, coils, dtype=maps.dtype, device=maps.device)
        sub_w = partial[..., ::2]
        for top in range(0, height, 2 * rows):
            stop = min(height, top + 2 * rows)
            block = torch.einsum("cdfx,fy->yxcd", sub_w, phase_h[:, top:stop:2])
            lead, _ = _leading_eigenpairs(block, max_iter)
            lead = lead.repeat_interleave(2, dim=0).repeat_interleave(2, dim=1)
            start[top:stop] = lead[: stop - top, :width]
    for top in range(0, height, rows):
        stop = min(height, top + rows)
        block = torch.einsum("cdfx,fy->yxcd", partial, phase_h[:, top:stop])
        if coarse:
            lead, lam = _refine(block, start[top:stop], _REFINE_ITER)
        else:
            lead, lam = _leading_eigenpairs(block, max_iter)
        ref = lead[..., :1]
        lead = lead * (ref.conj() / ref.abs().clamp_min(torch.finfo(eig.dtype).tiny))
        lead = lead * (lam > crop).unsqueeze(-1)
        maps[:, top:stop] = lead.permute(2, 0, 1)
        eig[top:stop] = lam.to(eig.dtype)
