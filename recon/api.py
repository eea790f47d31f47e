"""One call from k-space to image: :func:`reconstruct`.

This module normalises what users hand in (numpy or torch, complex or real view, single- or
multi-coil, with or without slices, any broadcastable mask or none), dispatches to a classical
solver in :mod:`recon.classical` or a learned model in :mod:`recon.models`, and hands back a
magnitude image of the input's kind and leading shape.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import warnings
from typing import Union

import numpy as np
import torch

from recon.classical import cg_sense, cs_tv, cs_wavelet, espirit_maps, zero_filled
from recon.classical.espirit import calibration_shape, sampling_pattern
from recon.ops._checks import check_int, describe, sampled_points
from recon.ops.coils import rss_complex, sens_expand
from recon.ops.crop import center_crop
from recon.ops.fft import ifft2c
from recon.train.checkpoint import bundled_weights, load_model, resolve_weights

__all__ = ["reconstruct", "synthesize", "denoise", "generate", "super_resolve", "register", "METHODS", "DEFAULT_METHOD", "bundled_weights", "load_model"]

logger = logging.getLogger(__name__)

#: every accepted ``method``
METHODS = ("zero_filled", "sense", "cs", "tv", "unet", "cascade", "varnet")
#: the method used when none is given: the bundled deep cascade, the best method on the held-out
#: split at both 4x and 8x (SSIM; data/weights/README.md, docs/reconstruct.md "The default method and why")
DEFAULT_METHOD = "cascade"
LEARNED = ("unet", "cascade", "varnet")

Array = Union[np.ndarray, torch.Tensor]

#: smallest fully sampled centre (points per side) from which ESPIRiT maps are estimated
MIN_CALIBRATION = 6

# Defaults of the classical methods, chosen on the validation split (docs/reconstruct.md).
SENSE_LAM = 0.01
CS_LAM = 0.002
TV_LAM = 0.003


# --------------------------------------------------------------------------------------------
# input normalisation


def _from_numpy(array: np.ndarray) -> torch.Tensor:
    """``torch.from_numpy`` for any numpy array recon reads: native byte order, contiguous,
    read-only arrays shared without a copy (recon never writes into its inputs)."""
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    array = np.ascontiguousarray(array)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


def _to_real_view(name: str, value: object) -> tuple[torch.Tensor, bool]:
    """numpy / torch, complex or real view ``(..., 2)`` -> (real-view tensor, was_numpy)."""
    if isinstance(value, np.ndarray):
        kind, size = value.dtype.kind, value.dtype.itemsize  # any byte order
        if kind == "c" and size in (8, 16):
            tensor = torch.view_as_real(_from_numpy(value))
        elif kind == "f" and size in (2, 4, 8) and value.ndim >= 1 and value.shape[-1] == 2:
            tensor = _from_numpy(value)
        else:
            raise TypeError(
                f"{name} must be complex64/complex128 (or a float16/32/64 array with a trailing "
                f"dimension of 2 holding real and imaginary parts), got {describe(value)}"
            )
        return tensor, True
    if isinstance(value, torch.Tensor):
        if value.is_complex():
            return torch.view_as_real(value.resolve_conj()), False
        if value.is_floating_point() and value.ndim >= 1 and value.shape[-1] == 2:
            return value, False
        raise TypeError(
            f"{name} must be complex (a complex tensor, or a real tensor with a trailing "
            f"dimension of 2 holding real and imaginary parts), got {describe(value)}"
        )
    raise TypeError(f"{name} must be a numpy array or a torch.Tensor, got {describe(value)}")


def _layout(shape: tuple[int, ...], single_coil: object) -> tuple[int, int]:
    """Complex shape -> (slices, coils) with ``None`` dims absent, or raise."""
    if single_coil is not None and not isinstance(single_coil, (bool, np.bool_)):
        raise TypeError(f"single_coil must be True, False or None, got {describe(single_coil)}")
    single_coil = None if single_coil is None else bool(single_coil)
    if 0 in shape:
        raise ValueError(f"kspace has an empty dimension: complex shape {tuple(shape)}")
    ndim = len(shape)
    if ndim == 4:
        if single_coil:
            raise ValueError(
                f"single_coil=True needs kspace (H, W) or (slices, H, W), got shape {shape}"
            )
        return shape[0], shape[1]
    if ndim == 3:
        return (shape[0], 1) if single_coil else (1, shape[0])
    if ndim == 2:
        if single_coil is False:
            raise ValueError(
                f"multi-coil kspace must be (coils, H, W) or (slices, coils, H, W), got shape {shape}"
            )
        return 1, 1
    raise ValueError(
        "kspace must be (H, W) or (slices, H, W) single-coil, or (coils, H, W) or "
        f"(slices, coils, H, W) multi-coil (complex, or real with a trailing 2), got complex shape {shape}"
    )


#: smallest k-space ``(H, W)`` per method: the U-Net halves the image ``num_pool_layers`` times
#: (``None``: ``2 ** pools`` per side, read off the loaded model, and two pixels left at its
#: coarsest level, where instance normalisation needs more than one value), the k-space models
#: locate the fully sampled centre among at least two columns; the classical methods take any
#: non-empty grid
MIN_KSPACE_SIZE = {
    "zero_filled": (1, 1), "sense": (1, 1), "cs": (1, 1), "tv": (1, 1),
    "unet": None, "cascade": (1, 2), "varnet": (1, 2),
}


def _check_geometry(method: str, height: int, width: int, model: torch.nn.Module | None = None) -> None:
    """Refuse k-space smaller than ``method`` can reconstruct (``ValueError`` naming kspace)."""
    need = MIN_KSPACE_SIZE[method]
    if need is None:  # the U-Net: 2 ** pools per side, and 2 values at its coarsest level
        pools = int(getattr(model, "num_pool_layers", 4))
        side = 2**pools
        if height < side or width < side or (height // side) * (width // side) < 2:
            raise ValueError(
                f"method 'unet' needs kspace of at least {side} x {side} (H x W) and more than one "
                f"pixel after its {pools} poolings (e.g. {2 * side} x {side}), got H = {height}, W = {width}"
            )
        return
    if height < need[0] or width < need[1]:
        raise ValueError(
            f"method {method!r} needs kspace of at least {need[0]} x {need[1]} (H x W), "
            f"got H = {height}, W = {width}"
        )


def _prepare_mask(mask: object, shape: tuple[int, ...]) -> torch.Tensor:
    """User mask -> float64 0/1 tensor broadcast (a view, not a copy) to the complex k-space ``shape``.

    Layout rule: a mask whose last dimension is 1 (and that has at least 2 dimensions and is not
    exactly the k-space's trailing dimensions) is in fastMRI's ``(..., W, 1)`` layout - the trailing 1
    always means "columns", also on square k-space where plain broadcasting would read it as
    rows. Every other mask broadcasts as numpy does: ``(W,)``, ``(H, W)``, ``(1, H, W)``, ...
    """
    if isinstance(mask, np.ndarray):
        if not (np.issubdtype(mask.dtype, np.number) or mask.dtype == np.bool_):
            raise TypeError(f"mask must be boolean or numeric, got {describe(mask)}")
        if np.iscomplexobj(mask):
            raise TypeError(f"mask must be real (boolean or 0/1), got {describe(mask)}")
        tensor = _from_numpy(mask.astype(np.float64, copy=False))
    elif isinstance(mask, torch.Tensor):
        tensor = mask.detach().cpu()
    else:
        raise TypeError(f"mask must be a numpy array, a torch.Tensor or None, got {describe(mask)}")
    if tensor.is_complex():
        raise TypeError(f"mask must be real (boolean or 0/1), got {describe(mask)}")
    tensor = tensor.to(torch.float64)
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError("mask contains NaN or Inf values")
    if not bool(((tensor == 0) | (tensor == 1)).all()):
        raise ValueError(f"mask must hold only 0 and 1 (or booleans), got values {tensor.unique()[:6].tolist()}")
    given = tuple(tensor.shape)
    layout = ""
    if tensor.ndim >= 2 and given[-1] == 1 and given != tuple(shape)[-len(given):]:
        tensor = tensor[..., 0]
        layout = " read as fastMRI's (..., W, 1) column layout (a trailing 1 always means columns),"
    try:
        return torch.broadcast_to(tensor, shape)
    except RuntimeError:
        raise ValueError(
            f"mask of shape {given}{layout} does not broadcast against the kspace shape {tuple(shape)}; "
            "give a column mask (W,) or (1, 1, W, 1), a 2-D mask (H, W), or any shape broadcastable "
            "to the k-space (a row mask as (H, W))"
        ) from None


def _prepare_maps(sens_maps: object, shape: tuple[int, ...], method: str, slices: int, coils: int) -> torch.Tensor:
    """User coil maps -> real-view tensor ``(slices, coils, H, W, 2)`` for k-space of complex ``shape``."""
    if method not in ("sense", "cs", "tv"):
        raise ValueError(f"sens_maps= is used by the methods sense, cs and tv, not by {method!r}")
    maps, _ = _to_real_view("sens_maps", sens_maps)
    if tuple(maps.shape[:-1]) != tuple(shape):
        raise ValueError(f"sens_maps must have the k-space's shape {tuple(shape)} (complex), got {describe(sens_maps)}")
    if not bool(torch.isfinite(maps).all()):
        raise ValueError("sens_maps contains NaN or Inf values")
    maps = maps.reshape(slices, coils, *shape[-2:], 2)
    if not bool(maps.flatten(1).ne(0).any(dim=1).all()):
        raise ValueError(
            "sens_maps are zero everywhere (in at least one slice): no coil sees the object; "
            "pass estimated maps, or sens_maps=None to estimate them (ESPIRiT)"
        )
    return maps


def _device(device: object, kspace: object) -> torch.device:
    if device is None:
        if isinstance(kspace, torch.Tensor):
            return kspace.device
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)  # type: ignore[arg-type]
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda', got {device!r}") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was requested but CUDA is not available")
    return dev


def _check_method(method: object) -> str:
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    return method


# --------------------------------------------------------------------------------------------
# per-method reconstruction of one batch (B, C, H, W, 2) -> (B, H, W)


def _check_crop(crop: object, height: int, width: int) -> tuple[int, int] | None:
    """``crop`` -> ``(h, w)`` clipped to the image ``(height, width)``, or ``None``."""
    if crop is None:
        return None
    if isinstance(crop, torch.Tensor):
        crop = crop.tolist()
    if isinstance(crop, (str, bytes)) or not hasattr(crop, "__len__") or len(crop) != 2:
        raise TypeError(f"crop must be None or two ints (height, width), got {describe(crop)}")
    size = []
    for value in crop:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"crop must be None or two ints (height, width), got {crop!r}")
        if value < 1:
            raise ValueError(f"crop must be two positive ints (height, width), got {tuple(int(v) for v in crop)}")
        size.append(int(value))
    return min(size[0], height), min(size[1], width)


def _rss_after_dc(image: torch.Tensor, maps: torch.Tensor, kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Coil images of ``image`` with the measured samples put back, combined by RSS.

    The result is on the scale, and has the noise floor, of the RSS of fully sampled data
    (fastMRI's ``reconstruction_rss``), as a VarNet's output does.
    """
    predicted = sens_expand(image, maps)
    consistent = torch.where(mask.bool(), kspace, predicted)
    return rss_complex(ifft2c(consistent), dim=1)


def _coil_by_coil(method: str, kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each coil reconstructed on its own (a unit map), combined by RSS: ``(B, H, W)``."""
    b, c = kspace.shape[:2]
    coils = kspace.reshape(b * c, 1, *kspace.shape[2:])
    coil_mask = mask.repeat_interleave(c, dim=0) if mask.shape[0] == b and b > 1 else mask
    image = _classical(method, coils, coil_mask, None)  # (B * C, H, W), one coil each
    return image.reshape(b, c, *image.shape[-2:]).pow(2).sum(dim=1).sqrt()


def _estimated_maps(kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor | None:
    """ESPIRiT maps from the calibration region, or ``None`` (with a warning) where there is none
    or ESPIRiT finds no coil sensitivity in some slice."""
    h, w = calibration_shape(sampling_pattern(kspace, mask))
    maps = espirit_maps(kspace, mask) if min(h, w) >= MIN_CALIBRATION else None
    if maps is not None and bool(maps.flatten(1).ne(0).any(dim=1).all()):
        return maps
    found = f"found {h} x {w}" if maps is None else "ESPIRiT found no coil sensitivity in it"
    warnings.warn(
        f"the mask has no usable fully sampled k-space centre ({found}, ESPIRiT needs "
        f"{MIN_CALIBRATION} x {MIN_CALIBRATION}): reconstructing each coil separately and "
        "combining them by RSS; pass sens_maps= for a SENSE-type reconstruction",
        RuntimeWarning,
        stacklevel=5,
    )
    return None


def _classical(method: str, kspace: torch.Tensor, mask: torch.Tensor, maps: torch.Tensor | None) -> torch.Tensor:
    if method == "zero_filled":
        return zero_filled(kspace)  # already masked
    if maps is None and kspace.shape[1] > 1:
        maps = _estimated_maps(kspace, mask)
        if maps is None:
            return _coil_by_coil(method, kspace, mask)
    if maps is None:  # single coil: a unit map
        maps = torch.zeros_like(kspace)
        maps[..., 0] = 1.0
    if method == "sense":
        image = cg_sense(kspace, maps, mask, lam=SENSE_LAM)
    elif method == "cs":
        image = cs_wavelet(kspace, maps, mask, lam=CS_LAM)
    else:
        image = cs_tv(kspace, maps, mask, lam=TV_LAM)
    return _rss_after_dc(image, maps, kspace, mask)


def _column_mask(mask: torch.Tensor) -> torch.Tensor:
    """``(B, 1, H, W, 1)`` 0/1 mask -> ``(B, 1, 1, W, 1)`` bool when it is a column mask, else bool as is."""
    if bool((mask == mask[:, :, :1]).all()):
        return mask[:, :, :1].bool()
    return mask.bool()


def _low_frequencies(kspace: torch.Tensor, mask: torch.Tensor) -> int:
    """Centre columns from which the k-space models estimate coil sensitivities.

    The width of the fully sampled centre; without one (no sampled column at the centre),
    the narrowest centred band of columns that holds two sampled columns (or all of them, if
    fewer): the estimate then comes from aliased low frequencies, with a warning, instead of
    from nothing (which gives NaN maps).
    """
    width = calibration_shape(sampling_pattern(kspace, mask))[1]
    if width > 0 or kspace.shape[1] == 1:  # (single-coil data need no sensitivities)
        return max(width, 1)
    columns = (mask[..., 0] != 0).flatten(0, -2).any(dim=0).cpu()  # (W,): sampled in any row
    total = kspace.shape[-2]
    need = min(2, int(columns.sum()))
    low = next(n for n in range(1, total + 1) if int(columns[(total - n + 1) // 2 : (total - n + 1) // 2 + n].sum()) >= need)
    warnings.warn(
        f"the mask samples no k-space centre: the learned model estimates coil sensitivities from the "
        f"{low} central columns ({need} sampled); expect a lower image quality than with calibration lines",
        RuntimeWarning,
        stacklevel=5,
    )
    return low


#: the flips of the U-Net's self-ensemble (``reconstruct(self_ensemble=True)``): identity,
#: left-right, up-down and both. Not the transposes: they turn the aliasing of a column mask
#: by 90 degrees, which the networks never see (validation SSIM 0.814 -> 0.791 at 4x).
UNET_FLIPS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))


def _unet_flips(model: torch.nn.Module, image: torch.Tensor, ensemble: bool) -> torch.Tensor:
    """A U-Net on a normalised image ``(B, 1, H, W)``; with ``ensemble``, the mean of its
    outputs over :data:`UNET_FLIPS` (each flipped back)."""
    if not ensemble:
        return model(image)
    out = torch.zeros_like(image)
    for dims in UNET_FLIPS:
        out += model(image.flip(dims)).flip(dims) if dims else model(image)
    return out / len(UNET_FLIPS)


def _row_mask(mask: torch.Tensor) -> bool:
    """Whether a ``(B, 1, H, W, 1)`` mask samples whole rows (phase encoding along H): constant
    along W and not a column mask."""
    if mask.shape[-2] < 2 or bool((mask == mask[:, :, :1]).all()):
        return False
    return bool((mask == mask[:, :, :, :1]).all())


def _learned(
    method: str, model: torch.nn.Module, kspace: torch.Tensor, mask: torch.Tensor, self_ensemble: bool = False,
    crop: tuple[int, int] | None = None,
) -> torch.Tensor:
    if _row_mask(mask):
        # Phase encoding along H: the networks learned fastMRI's column aliasing (phase encoding
        # along W), so they see the transposed k-space, whose mask samples columns; the centred
        # 2-D FFT commutes with the transpose, and the image is turned back.
        out = _learned(
            method, model, kspace.transpose(2, 3).contiguous(), mask.transpose(2, 3).contiguous(),
            self_ensemble, None if crop is None else (crop[1], crop[0]),
        )
        return out.transpose(-2, -1).contiguous()
    kspace = kspace.float()
    if method == "unet":
        image = rss_complex(ifft2c(kspace), dim=1)  # (B, H, W)
        if crop is not None:  # fastMRI's U-Net protocol: crop, then normalise over the crop
            image = center_crop(image, crop)
        mean = image.mean(dim=(-2, -1), keepdim=True)
        std = image.std(dim=(-2, -1), keepdim=True).clamp_min(1e-11)
        out = _unet_flips(model, ((image - mean) / std).clamp(-6, 6).unsqueeze(1), self_ensemble)[:, 0]
        return out * std + mean
    if kspace.shape[1] == 1 and method == "varnet":
        raise ValueError("method 'varnet' needs multi-coil k-space; use 'unet' or 'cascade' for single-coil data")
    num_low = torch.full((kspace.shape[0],), _low_frequencies(kspace, mask), dtype=torch.long, device=kspace.device)
    out = model(kspace, _column_mask(mask), num_low)
    if out.ndim == 5:  # complex image or coil images -> magnitude
        out = rss_complex(out, dim=1)
    elif out.ndim == 4:
        out = out[:, 0]
    return out


# --------------------------------------------------------------------------------------------
# the steps of reconstruct: bounded memory (slice chunks, nothing of the k-space's full size)

#: real k-space values inspected at a time by the whole-volume checks
_CHECK_ELEMENTS = 1 << 22


def _slice_chunks(data: torch.Tensor) -> list[slice]:
    step = max(1, _CHECK_ELEMENTS // max(1, data[0].numel()))
    return [slice(i, i + step) for i in range(0, data.shape[0], step)]


def _check_values(data: torch.Tensor) -> None:
    """NaN/Inf and all-zero k-space ``(S, C, H, W, 2)``, checked slice chunk by slice chunk."""
    nonzero = False
    for rows in _slice_chunks(data):
        if not bool(torch.isfinite(data[rows]).all()):
            raise ValueError("kspace contains NaN or Inf values")
        nonzero = nonzero or bool((data[rows] != 0).any())
    if not nonzero:
        raise ValueError("kspace is all zero: there is nothing to reconstruct")


def _sampling_mask(mask: object, data: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """The sampled points as a bool ``(S, 1, H, W, 1)`` (``None``: the non-zero k-space points)."""
    slices, coils, height, width = data.shape[:4]
    if mask is None:
        sampled = torch.cat([sampled_points(data[rows]) for rows in _slice_chunks(data)])
    else:  # a broadcast view of the user's mask: reduce over coils only where it varies over them
        view = _prepare_mask(mask, shape).reshape(slices, coils, height, width)
        sampled = (view[:, :1] if view.stride(1) == 0 else view.amax(dim=1, keepdim=True)) != 0
    if not bool(sampled.any()):
        raise ValueError("mask samples no k-space point")
    return sampled.unsqueeze(-1)


def _default_batch_size(method: str, dev: torch.device, coils: int, height: int, width: int) -> int:
    # real elements of k-space per batch: large on GPUs; on the CPU the solvers work in
    # cache-sized groups anyway, so small batches cost nothing and give a live progress bar
    budget = (2**25 if method in LEARNED else 2**26) if dev.type != "cpu" else 2**21
    return max(1, budget // max(1, coils * height * width * 2))


def _unit_exponent(kspace: torch.Tensor) -> int:
    """The exponent ``e`` of the power of two ``f = 2**e`` with ``max |f kspace|`` in ``[1, 2)``
    (0 for all-zero k-space).

    Every method works on ``f kspace`` and its image is divided by ``f``: exact in floating point,
    so the same k-space at any scale (1e-30 ... 1e20) gives the same image up to that scale,
    without underflow or overflow inside the methods. An exponent, not ``f``: float64 k-space of
    subnormal magnitude (~1e-310) needs ``f`` beyond the largest double (``2.0**1030`` overflows).
    """
    peak = float(torch.linalg.vector_norm(kspace, float("inf")))
    return -math.floor(math.log2(peak)) if peak > 0 else 0


def _reconstruct_batch(
    method: str, model: torch.nn.Module | None, kspace: torch.Tensor, mask: torch.Tensor, maps: torch.Tensor | None,
    self_ensemble: bool = False, crop: tuple[int, int] | None = None,
) -> torch.Tensor:
    """One batch ``(B, C, H, W, 2)`` k-space (masked here), bool mask ``(B, 1, H, W, 1)`` -> ``(B, H, W)``,
    or ``(B, *crop)``."""
    m = mask.to(kspace.dtype)
    kspace = kspace * m
    exponent = _unit_exponent(kspace)
    _mul_pow2_(kspace, exponent)
    if model is not None:
        out = _learned(method, model, kspace, m, self_ensemble, crop)
    else:
        out = _classical(method, kspace, m, maps)
    if crop is not None and tuple(out.shape[-2:]) != crop:
        out = center_crop(out, crop)
    if not bool(torch.isfinite(out).all()):
        raise ValueError(f"method {method!r} produced non-finite values on this input (please report it)")
    return _mul_pow2_(out, -exponent)


def _mul_pow2_(tensor: torch.Tensor, exponent: int) -> torch.Tensor:
    """``tensor *= 2**exponent`` in steps of at most ``2**64``, in place.

    One multiplication by ``2**139`` (the unit scale of subnormal float32 k-space, ~1e-42)
    would overflow to inf in float32; powers of two in steps are exact.
    """
    while exponent:
        step = max(-64, min(64, exponent))
        tensor.mul_(2.0**step)
        exponent -= step
    return tensor


# --------------------------------------------------------------------------------------------
# the public entry point


def _show_progress(progress: object, chunks: int) -> bool:
    if progress is None:
        return chunks > 1 and hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True, False or None, got {describe(progress)}")
    return progress


def reconstruct(
    kspace: Array,
    mask: Array | None = None,
    *,
    method: str = DEFAULT_METHOD,
    weights: str | os.PathLike | None = None,
    sens_maps: Array | None = None,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
    progress: bool | None = None,
    single_coil: bool | None = None,
    self_ensemble: bool | None = None,
    crop: tuple[int, int] | None = None,
) -> Array:
    """Reconstruct magnitude images from (undersampled) k-space.

    Args:
        kspace: fastMRI layout, numpy or torch, complex dtype or real with a trailing 2:
            multi-coil ``(coils, H, W)`` or ``(slices, coils, H, W)``; single-coil ``(H, W)``
            or, with ``single_coil=True``, ``(slices, H, W)``.
        mask: sampling mask broadcastable to the k-space: a column mask ``(W,)``, a 2-D mask
            ``(H, W)``, fastMRI's ``(1, 1, W, 1)``, ...; 0/1 or boolean.  ``None`` infers it
            from the non-zero points of ``kspace``.  Points outside the mask are ignored.  A mask
            of whole rows (phase encoding along H) reaches the learned models transposed, as the
            column mask they were trained on (exact: the image is turned back).
        method: ``"cascade"`` (default: the bundled deep cascade, trained on recon's simulated
            physics corpus; the best held-out SSIM and PSNR at 4x and 8x, above ``cs`` on anatomy
            and contrasts it never saw, in 0.8-1.6x its time, see docs/reconstruct.md),
            ``"cs"`` (ESPIRiT maps + L1-wavelet
            compressed sensing: no training data, good on any input without tuning - the choice
            for data unlike the corpus, e.g. other body parts), ``"zero_filled"``, ``"sense"``
            (Tikhonov CG-SENSE), ``"tv"`` (total variation), or another learned model:
            ``"varnet"`` (second to the cascade on held-out data, in about 1.2x ``cs``'s time on small
            slices and 0.8x at knee size) or
            ``"unet"`` (image domain, no data consistency; the fastest learned method).
            Learned methods return float32 also for complex128 input.
        weights: learned methods only: a checkpoint path (fastMRI's released state_dicts and
            Lightning ``.ckpt`` files work) or the name of a checkpoint in ``data/weights/``.
        sens_maps: coil maps of the k-space's shape (complex); ``None`` estimates ESPIRiT maps
            from the fully sampled k-space centre (``sense``, ``cs``, ``tv``).
        device: where to compute (``None``: the input tensor's device; for numpy, CUDA when
            available).  The result is returned where the input lives.
        batch_size: slices processed at once (``None``: all of them up to a memory budget).
        progress: show a progress bar over batches (``None``: when stderr is a terminal and
            there is more than one batch).
        single_coil: how to read a 3-D ``kspace``: ``None``/``False`` multi-coil
            ``(coils, H, W)``, ``True`` single-coil slices ``(slices, H, W)``.
        self_ensemble: ``method="unet"`` only: average the network's output over the four
            flips of its input image (:data:`UNET_FLIPS`; about 4x the U-Net's time, still
            well below ``cs``'s; validation SSIM +0.004 at 4x and 8x, docs/reconstruct.md).
            ``None``: on for ``"unet"``. The k-space models (``cascade``, ``varnet``) and the
            classical methods do not take it (``True`` raises ``ValueError``).
        crop: ``(height, width)``: return the centre of each image, as fastMRI's
            ``reconstruction_rss`` (e.g. 320 x 320 of a 640 x 368 acquisition with 2x readout
            oversampling; a side larger than the image is clipped to it, as ``recon
            reconstruct`` does).  ``method="unet"`` then also follows fastMRI's U-Net protocol:
            the zero-filled image is cropped *before* the network and normalised over the crop,
            as in training (over the full field of view, the empty oversampled margins shift
            the normalisation; see docs/reconstruct.md).  ``None``: the full field of view.

    Returns:
        Magnitude images ``(H, W)`` or ``(slices, H, W)`` (``crop`` instead of ``(H, W)`` when
        given; float32, float64 for complex128 input), numpy for numpy input and torch for torch
        input, on the scale of the RSS of the fully sampled data.

    Raises:
        TypeError: non-complex (real-valued) k-space, or arguments of the wrong type.
        ValueError: a wrong rank, a mask that does not broadcast or samples nothing, NaN/Inf,
            all-zero k-space, an unknown method, weights that do not fit the model, a ``crop``
            side below 1.
        FileNotFoundError: ``weights`` is neither a file nor a bundled checkpoint.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> kspace = rng.standard_normal((8, 64, 64)) + 1j * rng.standard_normal((8, 64, 64))
        >>> reconstruct(kspace, method="zero_filled").shape
        (64, 64)
    """
    method = _check_method(method)
    data, was_numpy = _to_real_view("kspace", kspace)
    shape = tuple(data.shape[:-1])
    slices, coils = _layout(shape, single_coil)
    data = data.reshape(slices, coils, *shape[-2:], 2)
    _check_values(data)
    batch_size = check_int("batch_size", batch_size, allow_none=True)
    if weights is not None and method not in LEARNED:
        raise ValueError(f"weights= is only used by the learned methods {LEARNED}, not by method {method!r}")
    if self_ensemble is not None and not isinstance(self_ensemble, (bool, np.bool_)):
        raise TypeError(f"self_ensemble must be a bool or None, got {describe(self_ensemble)}")
    if self_ensemble and method != "unet":
        raise ValueError(f"self_ensemble=True is only available for method 'unet', not for method {method!r}")
    self_ensemble = bool(method == "unet" if self_ensemble is None else self_ensemble)
    dev = _device(device, kspace)
    sampled = _sampling_mask(mask, data, shape)
    maps = None if sens_maps is None else _prepare_maps(sens_maps, shape, method, slices, coils)
    crop = _check_crop(crop, *shape[-2:])
    model = _learned_model(method, weights, dev)
    _check_geometry(method, *shape[-2:], model)
    if crop is not None and method == "unet":  # the U-Net runs on the crop
        try:
            _check_geometry(method, *crop, model)
        except ValueError as err:
            raise ValueError(f"crop {crop} is too small for the U-Net: {err}".replace("kspace", "an image")) from None
    result = _reconstruct_batches(method, model, data, sampled, maps, dev, batch_size, progress, self_ensemble, crop)
    lead = (slices,) if len(shape) == 4 or (len(shape) == 3 and single_coil) else ()
    result = result.reshape(*lead, *result.shape[-2:])
    return result.cpu().numpy() if was_numpy else result


def _learned_model(method: str, weights: object, dev: torch.device) -> torch.nn.Module | None:
    """The cached model of a learned ``method`` on ``dev`` (``None`` for the classical ones)."""
    if method not in LEARNED:
        return None
    path = resolve_weights(method, weights, bundled_weights())
    return load_model(path, model_name=method, map_location=dev, cached=True)[0]


def _reconstruct_batches(
    method: str, model: torch.nn.Module | None, data: torch.Tensor, sampled: torch.Tensor,
    maps: torch.Tensor | None, dev: torch.device, batch_size: int | None, progress: bool | None,
    self_ensemble: bool = False, crop: tuple[int, int] | None = None,
) -> torch.Tensor:
    """``(S, C, H, W, 2)`` k-space -> ``(S, H, W)`` images (``(S, *crop)`` with ``crop``), batch by batch on ``dev``, back where
    ``data`` lives (float64 for float64 data, else float32; the learned models run in float32)."""
    from tqdm.auto import tqdm

    slices, coils, height, width = data.shape[:4]
    dtype = torch.float64 if data.dtype == torch.float64 and model is None else torch.float32
    batch_size = batch_size or _default_batch_size(method, dev, coils, height, width)
    starts = range(0, slices, batch_size)
    outputs = []
    with torch.inference_mode():
        bar = tqdm(starts, desc=f"recon {method}", unit="batch", disable=not _show_progress(progress, len(starts)))
        for start in bar:
            rows = slice(start, min(slices, start + batch_size))
            k = data[rows].to(device=dev, dtype=dtype)
            s = maps[rows].to(device=dev, dtype=dtype) if maps is not None else None
            outputs.append(_reconstruct_batch(method, model, k, sampled[rows].to(dev), s, self_ensemble, crop).to(data.device))
    return torch.cat(outputs).to(torch.float64 if data.dtype == torch.float64 else torch.float32)


# --------------------------------------------------------------------------------------------
# Image heads (issue 13): synthesize, denoise, generate. The networks live in recon.heads; the
# weight files and their loader in recon.train.tasks_heads.


def _head_image(image: object, dims: tuple[int, ...] = (2, 3), min_size: int = 8,
                in_plane: bool = False) -> tuple[torch.Tensor, bool]:
    """A real floating image as a float32 CPU tensor (numpy or torch in), refusing NaN/Inf and
    axes shorter than ``min_size`` (with ``in_plane``, only the first two: a volume that goes
    slice by slice may have few slices)."""
    was_numpy = isinstance(image, np.ndarray)
    if was_numpy:
        image = _from_numpy(image)
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"image must be a numpy array or torch tensor, got {describe(image)}")
    if image.is_complex() or image.dtype == torch.bool:
        raise TypeError(f"image must be a real magnitude image, got {describe(image)}")
    if image.ndim not in dims:
        want = " or ".join(f"{d}-D" for d in dims)
        raise ValueError(f"image must be {want} ((H, W) slice or (X, Y, Z) volume), got shape {tuple(image.shape)}")
    if min(image.shape[:2] if in_plane else image.shape) < min_size:
        where = "along its first two (in-plane) axes" if in_plane else "along every axis"
        raise ValueError(f"image must be at least {min_size} pixels {where}, got shape {tuple(image.shape)}")
    image = image.detach().to(device="cpu", dtype=torch.float32)  # a CUDA tensor in: the heads start from a CPU copy
    if not bool(torch.isfinite(image).all()):
        raise ValueError("image contains NaN or Inf values")
    if float(image.max()) <= 0:
        raise ValueError("image has no positive signal (all values <= 0)")
    return image, was_numpy


def _check_depth(x: torch.Tensor, what: str, min_size: int = 8) -> None:
    """A volume for a 3-D network needs ``min_size`` slices too (the slice path takes any number)."""
    if x.ndim == 3 and x.shape[2] < min_size:
        raise ValueError(f"image has {x.shape[2]} slices (shape {tuple(x.shape)}) but {what} needs at least "
                         f"{min_size}; pass method='unet' (slice by slice) or a volume with more slices")


def _head_device(device: object) -> torch.device:
    """The image heads' ``device=``: None is the CPU; anything else checked as in :func:`reconstruct`."""
    return torch.device("cpu") if device is None else _device(device, None)


def _head_output(result: torch.Tensor, was_numpy: bool, device: torch.device | None = None):
    result = result.detach().cpu()
    return result.numpy() if was_numpy else (result.to(device) if device is not None else result)


def _synthesis_pairs() -> list[str]:
    from recon.train.tasks_heads import available_heads

    return sorted(n for n in available_heads() if n.startswith(("synthesis-", "cyclegan-")))


SYNTHESIS_METHODS = ("ensemble", "unet", "resnet3d")

#: bundled slice ensembles: a pair's U-Net -> its other U-Nets; where all are bundled, the slice
#: path (2-D slices, ``method="unet"``, and the U-Net part of the volume ensemble) runs
#: ``SliceEnsemble([first, *others], SLICE_ENSEMBLE_WEIGHTS)`` (recon.heads.synthesis; weights
#: chosen on validation subjects)
_SLICE_ENSEMBLES = {"synthesis-unet-t1w-flair": ("synthesis-unet-t1w-flair-c12", "synthesis-unet-t1w-flair-c12s2")}


def _has_slice_ensemble(name: str, pairs: list[str]) -> bool:
    return name in _SLICE_ENSEMBLES and set(_SLICE_ENSEMBLES[name]) <= set(pairs)


def _bundled_slice_network(name: str, pairs: list[str], device: torch.device) -> torch.nn.Module:
    """The bundled slice path of a pair in eval mode: its U-Net ``name``, or the slice ensemble
    of it and its other U-Nets where those are bundled too."""
    from recon.heads.synthesis import SLICE_ENSEMBLE_WEIGHTS, SliceEnsemble
    from recon.train.tasks_heads import load_head

    net = load_head(name)[0]
    if _has_slice_ensemble(name, pairs):
        net = SliceEnsemble([net, *(load_head(n)[0] for n in _SLICE_ENSEMBLES[name])], list(SLICE_ENSEMBLE_WEIGHTS))
    return net.to(device).eval()


def synthesize(
    image: Union[np.ndarray, torch.Tensor],
    source: str = "t1",
    target: str = "flair",
    weights: Union[str, os.PathLike, None] = None,
    *,
    method: str | None = None,
    dims: int | None = None,
    patch_size: int = 64,
    overlap: int = 16,
    flip_average: bool = True,
    device: Union[str, torch.device, None] = None,
    progress: bool = False,
):
    """Synthesise another MR contrast from a slice or a volume (e.g. FLAIR from T1-weighted).

    The image is divided by its foreground mean (the mean of the voxels above the mean), so any
    intensity scale works. A 2-D slice goes through the 2-D U-Net (T1w -> FLAIR: the slice
    ensemble of three bundled U-Nets, :class:`recon.heads.synthesis.SliceEnsemble`, weights
    ``SLICE_ENSEMBLE_WEIGHTS`` chosen on validation subjects; it is also the U-Net part below). A
    3-D volume ``(X, Y, Z)``
    (RAS-like order, axial = last axis) goes by default (``method=None``) to the **ensemble** of
    the pair's two bundled networks: ``0.7 x`` the 2-D U-Net applied to every axial slice ``+ 0.3 x``
    the 3-D ResNet applied by overlapping patches with linear blending (any size; memory one
    patch); the weight and the default were chosen on validation subjects
    (:func:`recon.heads.synthesis.ensemble_volume`, ``ENSEMBLE_UNET_WEIGHT``). ``method="unet"``
    or ``"resnet3d"`` runs one of them alone. The bundled weights were trained on 2 mm phantom
    heads (see ``data/weights/heads/*.json``): results on real scans are a demonstration, not a
    diagnosis.

    Orientation matters: the networks were trained on array-order slices ``volume[:, :, z]`` of
    RAS-like volumes (rows left -> right, columns posterior -> anterior), without rotations. A
    display-oriented slice (anterior up, as :func:`recon.data.simulate.nifti_slices`, fastMRI
    and ``recon reconstruct`` give them) goes in as ``np.rot90(slice, -1)``; fed as displayed it
    scores about 2.5 dB lower (validation subjects, T1w -> FLAIR). ``recon synthesize`` turns a
    reconstruction's slices back itself.

    Args:
        image: magnitude ``(H, W)`` slice or ``(X, Y, Z)`` volume, numpy or torch, any scale,
            in the orientation above.
        source: contrast of ``image``: ``"t1"``/``"t1w"``, ``"t2"``/``"t2w"``, ``"flair"``, ``"pd"``.
        target: contrast to synthesise.
        weights: None (the bundled network(s) for the pair), a bundled name
            (``"synthesis-unet-t1w-flair"``, ``"cyclegan-t1w-t2w"``, ...) or a weight file written
            by ``recon train --task synthesis|cyclegan``. The bundled ``cyclegan-t1w-t2w`` (an
            intensity table per contrast, trained unpaired on skull-stripped slices) wants
            skull-stripped input: multiply the image by its brain mask
            (:func:`recon.preprocess.brain_mask`) first; scalp and skull come out wrong otherwise.
        method: which network(s), for bundled weights: ``"ensemble"`` (volumes only: U-Net slice
            by slice and 3-D ResNet averaged, 0.7 / 0.3), ``"unet"`` (2-D U-Net; a volume slice
            by slice along its last axis), ``"resnet3d"`` (3-D ResNet; volumes only) or None: the
            U-Net for a slice, the ensemble for a volume (the 3-D ResNet where the pair has no
            U-Net). With ``weights`` given the file decides the network (``method`` None or
            matching it; not ``"ensemble"``).
        dims: the older way to choose: 2 = ``method="unet"``, 3 = ``method="resnet3d"``; give
            ``dims`` or ``method``, not both.
        patch_size: 3-D patch side (voxels).
        overlap: overlap of neighbouring 3-D patches (voxels).
        flip_average: average the prediction with the one of the image mirrored along its first
            axis (left-right for RAS-ordered axial/coronal data: a nearly symmetric head;
            :func:`recon.heads.synthesis.translate_slices`). Twice the time; about +0.75 dB PSNR
            on the validation phantoms. Turn off for sagittal slices.
        device: where to run (default CPU).
        progress: tqdm bar over 3-D patches.

    Returns:
        The synthesised contrast, same shape and container type as ``image``, float32, in
        **foreground-mean units**: the target contrast divided by the mean of its voxels above
        its mean (brain tissue about 0.5-1.5, background about 0). Multiply by a reference
        target scan's foreground mean to put it on that scan's scale.

    Raises:
        ValueError: unknown ``source``/``target``/``method`` or a pair without weights (the
            message lists the available ones); a 2-D image for a 3-D-only model or the ensemble;
            ``dims`` and ``method`` both given, or ``weights`` with ``method="ensemble"``;
            NaN/Inf; an image < 8 pixels in-plane, or a volume of < 8 slices for a 3-D network
            (the slice path takes any number of slices).
        TypeError: not a real array.

    Example:
        >>> import numpy as np, recon
        >>> t1 = np.random.default_rng(0).random((64, 72)).astype(np.float32)   # doctest: +SKIP
        >>> flair = recon.synthesize(t1, source="t1", target="flair")           # doctest: +SKIP
    """
    from recon.heads.synthesis import ensemble_volume, resnet3d_volume, translate_slices, unet_volume
    from recon.train.tasks_heads import canonical_contrast, load_head, normalise_volume

    src = canonical_contrast(source, "source")
    tgt = canonical_contrast(target, "target")
    if src == tgt:
        raise ValueError(f"target must differ from source, got {target!r} and {source!r}")
    if method is not None and (not isinstance(method, str) or method not in SYNTHESIS_METHODS):
        raise ValueError(f"method must be one of {', '.join(map(repr, SYNTHESIS_METHODS))} or None, got {method!r}")
    x, was_numpy = _head_image(image, in_plane=True)  # the slice path takes any number of slices
    if dims is not None and dims not in (2, 3):
        raise ValueError(f"dims must be 2, 3 or None, got {dims!r}")
    if dims is not None and method is not None:
        raise ValueError(f"give method or dims, not both (dims=2 is method='unet', dims=3 method='resnet3d'), "
                         f"got method={method!r} and dims={dims!r}")
    if dims is not None:
        method = "unet" if dims == 2 else "resnet3d"
    if method == "resnet3d" and x.ndim == 2:
        raise ValueError(f"{'dims=3' if dims else 'method=' + repr(method)} asks for the 3-D-only ResNet3d, but image "
                         "is a 2-D slice; pass a volume or method='unet'")
    if method == "ensemble" and x.ndim == 2:
        raise ValueError("method='ensemble' averages the 2-D U-Net with the 3-D-only ResNet3d and needs an (X, Y, Z) "
                         "volume, but image is a 2-D slice; pass a volume or method='unet'")
    dev = _head_device(device)
    if weights is None:
        pairs = _synthesis_pairs()
        unet_name, resnet_name = f"synthesis-unet-{src}-{tgt}", f"synthesis-resnet3d-{src}-{tgt}"
        if method is None:
            method = "unet" if x.ndim == 2 else (
                "ensemble" if {unet_name, resnet_name} <= set(pairs) else "resnet3d" if resnet_name in pairs else "unet")
        need = {"ensemble": [unet_name, resnet_name], "unet": [unet_name], "resnet3d": [resnet_name]}[method]
        if not set(need) <= set(pairs):
            raise ValueError(f"no bundled weights for source={src!r} -> target={tgt!r} with method={method!r} "
                             f"(needs {need}); available: {pairs}")
        if method == "ensemble":
            _check_depth(x, "method='ensemble' (its 3-D ResNet part)")
        if method == "ensemble" or (method == "unet" and _has_slice_ensemble(unet_name, pairs)):
            unet = _bundled_slice_network(unet_name, pairs, dev)
            t = torch.from_numpy(normalise_volume(x.numpy())[0]).to(dev)
            with torch.no_grad():
                if method == "ensemble":
                    resnet = load_head(resnet_name)[0].to(dev).eval()
                    out = ensemble_volume(unet, resnet, t, flip_average=flip_average, patch_size=patch_size,
                                          overlap=overlap, progress=progress)
                elif t.ndim == 2:
                    out = translate_slices(unet, t[None, None], flip_average=flip_average)[0, 0]
                else:
                    out = unet_volume(unet, t, flip_average=flip_average)
            return _head_output(out.float(), was_numpy, image.device if not was_numpy else None)
        weights = need[0]
    elif method == "ensemble":
        raise ValueError(f"method='ensemble' averages the pair's two bundled networks, so weights must be None, "
                         f"got weights={str(weights)!r}")
    model, config, _ = load_head(weights)
    if config.task not in ("synthesis", "cyclegan"):
        raise ValueError(f"weights {str(weights)!r} are a {config.task!r} model, not a synthesis model")
    if config.task == "cyclegan":
        if (src, tgt) == (config.source, config.target):
            model = model["g_ab"]
        elif (src, tgt) == (config.target, config.source):
            model = model["g_ba"]
        else:
            raise ValueError(f"weights {str(weights)!r} translate {config.source} <-> {config.target}, "
                             f"not source={src!r} -> target={tgt!r}; available: {_synthesis_pairs()}")
        arch = "unet"
    else:
        if (src, tgt) != (config.source, config.target):
            raise ValueError(f"weights {str(weights)!r} synthesise {config.source} -> {config.target}, "
                             f"not source={src!r} -> target={tgt!r}; available: {_synthesis_pairs()}")
        arch = config.arch
    if arch == "resnet3d" and x.ndim == 2:
        raise ValueError(f"image is a 2-D slice but weights {str(weights)!r} are the 3-D-only ResNet3d; "
                         "pass a 3-D volume or 2-D weights")
    if arch == "resnet3d" and method == "unet":
        raise ValueError(f"{'dims=2' if dims else 'method=' + repr(method)} asks for a slice network, but the weights "
                         "are the 3-D-only ResNet3d")
    if arch != "resnet3d" and method == "resnet3d":
        raise ValueError(f"{'dims=3' if dims else 'method=' + repr(method)} asks for the 3-D ResNet, but weights "
                         f"{str(weights)!r} are a 2-D slice network")
    if arch == "resnet3d":
        _check_depth(x, "the 3-D ResNet")
    model = model.to(dev).eval()
    normalised, _ = normalise_volume(x.numpy())
    t = torch.from_numpy(normalised).to(dev)
    with torch.no_grad():
        if arch == "resnet3d":
            out = resnet3d_volume(model, t, flip_average=flip_average, patch_size=patch_size, overlap=overlap,
                                  progress=progress)
        elif t.ndim == 2:
            out = translate_slices(model, t[None, None], flip_average=flip_average)[0, 0]
        else:
            out = unet_volume(model, t, flip_average=flip_average)
    return _head_output(out.float(), was_numpy, image.device if not was_numpy else None)


def denoise(
    image: Union[np.ndarray, torch.Tensor],
    *,
    sigma: float | None = None,
    weights: Union[str, os.PathLike, None] = None,
    device: Union[str, torch.device, None] = None,
):
    """Remove Rician noise from a magnitude slice or volume; the noise level is estimated.

    Args:
        image: magnitude ``(H, W)`` slice or ``(X, Y, Z)`` volume (denoised axial slice by
            slice, the last axis), numpy or torch, any intensity scale.
        sigma: noise standard deviation (of each Gaussian component) in the image's units;
            None (default) estimates it (:func:`recon.heads.denoise.estimate_sigma`).
        weights: None (bundled ``"denoise"``), a bundled name or a ``recon train --task denoise`` file.
        device: where to run (default CPU).

    Returns:
        Denoised image, same shape, container and scale as ``image``, float32, >= 0.

    Raises:
        ValueError: NaN/Inf, a negative or non-finite ``sigma``, a non-denoising weight file.

    Example:
        >>> clean = recon.denoise(noisy_slice)   # doctest: +SKIP
    """
    from recon.heads.denoise import denoise_image
    from recon.train.tasks_heads import load_head

    x, was_numpy = _head_image(image, in_plane=True)  # slice by slice: any number of slices
    if sigma is not None and (isinstance(sigma, bool) or not isinstance(sigma, (int, float))
                              or not math.isfinite(sigma) or sigma < 0):
        raise ValueError(f"sigma must be a finite number >= 0 or None, got {sigma!r}")
    model, config, _ = load_head("denoise" if weights is None else weights)
    if config.task != "denoise":
        raise ValueError(f"weights {str(weights)!r} are a {config.task!r} model, not a denoiser")
    model = model.to(_head_device(device))
    stack = x if x.ndim == 2 else x.permute(2, 0, 1)
    out = denoise_image(model, stack, sigma)
    out = out if x.ndim == 2 else out.permute(1, 2, 0)
    return _head_output(out.contiguous(), was_numpy, image.device if not was_numpy else None)


def generate(
    n: int,
    seed: int = 0,
    *,
    weights: Union[str, os.PathLike, None] = None,
    device: Union[str, torch.device, None] = None,
) -> np.ndarray:
    """Sample new 2-D T1-weighted axial slices from the bundled DCGAN (Bermudez et al. 2018).

    Args:
        n: number of slices.
        seed: seed of the latent draws (same seed, same slices).
        weights: None (bundled ``"gan"``), a bundled name or a ``recon train --task gan`` file.
        device: where to run (default CPU).

    Returns:
        float32 numpy array ``(n, size, size)`` (size 64 for the bundled weights) in ``[0, 1]``,
        1 being the training slices' 99.5th intensity percentile.

    Raises:
        TypeError / ValueError: ``n`` not a positive int, ``seed`` not an int >= 0.

    Example:
        >>> slices = recon.generate(8, seed=1)   # doctest: +SKIP
    """
    from recon.train.tasks_heads import load_head

    check_int("n", n)
    check_int("seed", seed, minimum=0)
    model, config, _ = load_head("gan" if weights is None else weights)
    if config.task != "gan":
        raise ValueError(f"weights {str(weights)!r} are a {config.task!r} model, not the slice GAN")
    dev = _head_device(device)
    model = model.to(dev)
    slices = model.sample(n, torch.Generator().manual_seed(seed))
    return ((slices[:, 0].float().cpu() + 1) / 2).clamp(0, 1).numpy()


# --------------------------------------------------------------------------------------------
# Super-resolution (issue 14). Networks and degradations in recon.heads.superres; weight files,
# their loader and the default choice per scale in recon.train.tasks_superres.


def super_resolve(
    image: Union[np.ndarray, torch.Tensor],
    scale: Union[int, tuple],
    weights: Union[str, os.PathLike, None] = None,
    *,
    patch_size: int = 32,
    overlap: int = 8,
    device: Union[str, torch.device, None] = None,
    progress: bool = False,
    adapt: Union[bool, int, None] = None,
    self_ensemble: Union[bool, None] = None,
    calibrate: Union[bool, None] = None,
):
    """Super-resolve a low-resolution slice or volume: ``scale`` times more voxels per axis.

    The image is taken at its own matrix size; the output covers the same field of view with
    ``scale`` times as many voxels per axis (voxel ``j`` of the input covers output voxels
    ``s j .. s j + s - 1``; for NIfTI, the output affine is the input's times
    ``diag(1/s)`` shifted by ``(1/s - 1)/2`` voxels, see ``recon superres``). Networks: a 2-D
    slice goes through the multi-scale fusion CNN (bundled ``superres-2d-x2``/``-x4``); a volume
    with one enlarged axis (thick slices, e.g. ``(1, 1, 3)``) through the 2-D fusion CNN
    ``superres-2d-thick`` on the planes through the slices after it has been adapted to this
    volume (``adapt``, below: self-supervised on the volume's own high-resolution planes, about
    2 min on one CPU thread; chosen on validation at 2x and 4x over sinc and the shipped networks;
    ``adapt=False`` gives the shipped networks without it: at 2x sinc alone, ``weights="sinc"``,
    at 3x and 4x ``superres-2d-thick``, other factors the 3-D ``superres-3d-thick``); an isotropic ``(2, 2, 2)`` volume through the 2-D
    x2 network on every plane of all three orientations, the three residuals averaged
    (``superres-2d-x2``; chosen on validation over the 3-D SRGAN generators:
    ``weights="srgan-3d-x2-mse"`` for the content-trained one, ``"srgan-3d-x2"`` for the
    adversarial one, sharper texture, lower PSNR); an in-plane ``(s, s, 1)`` volume slice by slice
    through the 2-D network. Volumes run by overlapping patches blended linearly (any size; memory one patch).
    Every bundled network adds a learned residual to the zero-filled k-space (sinc)
    interpolation of the input, the least-squares linear estimate for k-space-truncated data.
    They were trained on 1 mm phantom heads (``superres-2d-x2`` and ``superres-3d-thick`` also on
    part of the MNI152 2009a template) with low resolution made by k-space truncation (see
    ``data/weights/heads/superres-*.json``, docs/superres.md).

    Args:
        image: magnitude ``(H, W)`` slice or ``(X, Y, Z)`` volume, numpy or torch, any intensity scale.
        scale: positive int (every axis) or per-axis tuple of positive ints, e.g. ``(1, 1, 3)``.
        weights: None (the bundled network for the scale), a bundled name, ``"sinc"``
            (zero-filled interpolation alone, any scale) or a weight file written by
            ``recon train --task superres|srgan``.
        patch_size: LR patch side of the 3-D path (voxels).
        overlap: overlap of neighbouring LR patches (voxels).
        device: where to run (default CPU).
        progress: tqdm bar over 3-D patches (and over the adaptation steps).
        adapt: thick slices only - self-supervised adaptation to this volume (SMORE,
            :func:`recon.heads.superres.adapt_through_plane`): its high-resolution X-Y planes,
            k-space-truncated along X or Y by the slice factor, fine-tune a copy of the 2-D
            thick-slice network (``weights``, or ``superres-2d-thick`` for None / ``"sinc"``) for a
            number of Adam steps, which then runs on the X-Z and Y-Z planes (averaged over the 4
            flips of each plane unless ``self_ensemble=False``). None: on for thick slices with
            ``weights=None`` (``recon.train.tasks_superres.ADAPT_BY_DEFAULT``, ``ADAPT_STEPS`` =
            800 steps); True: ``ADAPT_STEPS``; False or 0: off; an int: that many steps (CPU time
            grows with it, not with the volume's size).
        self_ensemble: average the network's outputs over the flips/transposes of its input ("x8",
            :func:`recon.heads.superres.upscale_image`; 8 times the work). None: the validated default
            (:func:`recon.train.tasks_superres.self_ensemble_default`): on for 2-D slices and in-plane
            ``(s, s, 1)`` volumes (+0.3 dB at 2-D x2 on validation), off otherwise (thick slices,
            the 2-D network on isotropic volumes, 3-D networks).
        calibrate: weight the network's learned residual over the zero-filled (sinc) interpolation
            for this image, ``sinc + w (network - sinc)`` with ``w`` in [0, 1] fitted on the image
            itself degraded once more by ``scale`` (:func:`recon.heads.superres.residual_weight`;
            one more network pass on an image ``prod(scale)`` times smaller). None: on for the
            isotropic ``(2, 2, 2)`` default only (``recon.train.tasks_superres.calibrate_default``,
            chosen on validation), off otherwise; True / False: on / off for any network.

    Returns:
        The super-resolved image, shape ``scale`` times ``image``'s per axis, same container type,
        float32, **in the input's intensity units** (normalised internally by the foreground mean,
        multiplied back), clipped at 0 for non-negative input.

    Raises:
        TypeError: not a real array; ``scale`` not an int or tuple of ints.
        ValueError: ``scale`` with a factor < 1, of the wrong length or without a factor > 1;
            NaN/Inf; an image smaller than the network's receptive field; a 2-D image with 3-D
            weights; a scale without a bundled network; ``adapt`` steps for anything but thick slices
            or with 3-D weights.

    Example:
        >>> import numpy as np, recon
        >>> thick = np.random.default_rng(0).random((64, 64, 20)).astype(np.float32)   # doctest: +SKIP
        >>> thin = recon.super_resolve(thick, (1, 1, 3))                                # doctest: +SKIP
        >>> thin.shape                                                                  # doctest: +SKIP
        (64, 64, 60)
    """
    from recon.heads.superres import adapt_through_plane, check_scale, kspace_zero_pad, residual_weight, upscale_image
    from recon.train.tasks_superres import (
        ADAPT_LR, ADAPT_SELF_ENSEMBLE, SINC, adapt_plan, calibrate_default, select_superres, self_ensemble_default,
    )

    if calibrate is not None and not isinstance(calibrate, bool):
        raise TypeError(f"calibrate must be True, False or None, got {type(calibrate).__name__} {calibrate!r}")
    x, was_numpy = _head_image(image, min_size=2)
    s = check_scale(scale, x.ndim)
    dev = _head_device(device)
    steps, start = adapt_plan(adapt, x.ndim, s, weights)
    model, config, axes = select_superres(x.ndim, s, start, dev)
    if axes is not None:
        x, s = x.permute(*axes), tuple(s[a] for a in axes)
    if steps:
        if config.dims != 2:
            raise ValueError(f"adapt needs 2-D thick-slice weights (the network runs on X-Z / Y-Z planes); "
                             f"weights {str(start)!r} are a {config.dims}-D network (pass adapt=False)")
        model = adapt_through_plane(model, x, s, steps=steps, lr=ADAPT_LR, progress=progress)
    if self_ensemble is None:  # an adapted thick-slice network: ADAPT_SELF_ENSEMBLE (validated on)
        self_ensemble = ADAPT_SELF_ENSEMBLE if steps else self_ensemble_default(x.ndim, s, config.dims,
                                                                                config.weight_name)
    out = upscale_image(model, x, s, patch_size=patch_size, overlap=overlap, progress=progress,
                        self_ensemble=self_ensemble)
    if calibrate is None:
        calibrate = calibrate_default(x.ndim, s, weights)
    if calibrate and config.weight_name != SINC:
        w = residual_weight(model, x, s, patch_size=patch_size, overlap=overlap, self_ensemble=self_ensemble)
        base = kspace_zero_pad(x, s, spatial_dims=x.ndim).to(out.dtype).to(out.device)
        out = base + w * (out - base)
        if float(x.min()) >= 0:
            out = out.clamp(min=0)
    if axes is not None:
        out = out.permute(*[axes.index(a) for a in range(3)])
    return _head_output(out.float().contiguous(), was_numpy, image.device if not was_numpy else None)


#: every accepted ``method`` of :func:`register`
REGISTRATION_METHODS = ("learned", "rigid", "affine", "bspline")


def _register_volume(name: str, value: object) -> tuple[np.ndarray, bool]:
    """A finite real 3-D volume (numpy or torch) as float32 numpy, and whether it was torch."""
    from recon.preprocess._checks import as_volume

    was_torch = isinstance(value, torch.Tensor)
    if isinstance(value, (np.ndarray, torch.Tensor)) and value.dtype in (np.bool_, torch.bool):
        raise TypeError(f"{name} must be a real-valued image, got {describe(value)}")
    volume = as_volume(name, value, dtype=np.float32)
    if not np.all(np.isfinite(volume)):
        raise ValueError(f"{name} contains NaN or Inf values")
    if float(volume.max()) == float(volume.min()):
        raise ValueError(f"{name} is constant; there is nothing to register")
    return volume, was_torch


def register(
    fixed: Union[np.ndarray, torch.Tensor],
    moving: Union[np.ndarray, torch.Tensor],
    method: str = "learned",
    *,
    fixed_affine: Union[np.ndarray, None] = None,
    moving_affine: Union[np.ndarray, None] = None,
    weights: Union[str, os.PathLike, None] = None,
    metric: str = "mutual_information",
    seed: int = 0,
    num_threads: int | None = None,
    device: Union[str, torch.device, None] = None,
    refine: Union[bool, int, None] = None,
):
    """Register ``moving`` to ``fixed``: a network (VoxelMorph) or SimpleITK's iterative methods.

    ``method="learned"`` (Balakrishnan et al. 2019): both volumes go to the network's 4 mm
    working grid, are aligned by a fast affine registration (Mattes mutual information,
    :func:`recon.heads.registration.prealign`), normalised (99th percentile), and the bundled
    :class:`~recon.heads.registration.RegistrationNet` predicts a diffeomorphic displacement,
    which is then refined for this pair by a short instance-specific optimisation of the
    network's own loss (VoxelMorph's "instance-specific optimization": Adam steps on local NCC +
    smoothness, 100 on the 4 mm grid then 30 at 2 mm; ``refine``);
    the moving image is then resampled once through affine + displacement onto ``fixed``'s grid.
    ``"rigid"``, ``"affine"``, ``"bspline"`` run :func:`recon.preprocess.register` (multi-resolution,
    ``metric``; B-spline after an affine stage). Intensities may be on any scale.

    The bundled network was trained on T1-weighted phantom heads at 2 mm
    (``data/weights/heads/register.json``); same-contrast pairs (T1w to T1w) are what it knows.

    Args:
        fixed: (X, Y, Z) reference volume (numpy or torch).
        moving: (X, Y, Z) volume to align to ``fixed``.
        method: ``"learned"``, ``"rigid"``, ``"affine"`` or ``"bspline"``.
        fixed_affine, moving_affine: 4x4 voxel-to-world (RAS mm) affines; default 1 mm identity
            - required when the shapes differ.
        weights: learned only: None (bundled ``"register"``), a bundled name or a file of
            ``recon train --task register``.
        metric: iterative methods: ``"mutual_information"`` or ``"mean_squares"``.
        seed: seed of SimpleITK's metric sampling (deterministic).
        num_threads: SimpleITK threads (None: its default; for ``"learned"`` None means 1, which
            makes its affine pre-alignment reproducible to the bit).
        device: learned only: where the network and the refinement's Adam steps run (default
            CPU; the affine pre-alignment and the resampling stay on the CPU).
        refine: learned only: None or True the default refinement
            (:data:`recon.heads.registration.REFINE_LEVELS`), False or 0 the network's field as
            is (about 1 s), an int the Adam steps per level, or ``(voxel_mm, steps)`` levels.

    Returns:
        ``(warped, transform)``: ``moving`` on ``fixed``'s grid (float32, numpy for numpy
        ``fixed``, torch for torch), and an object with ``.apply(volume, order)`` warping other
        volumes of the moving subject (``order=0`` for labels): a
        :class:`~recon.heads.registration.DeformableTransform` (learned) or a
        :class:`~recon.preprocess.register.RegistrationResult` (iterative).

    Raises:
        ValueError: unknown method, not 3-D, different shapes without affines, NaN/Inf,
            a constant volume, weights that are not a registration network, a negative
            ``refine``.
        TypeError: not a real array, ``refine`` not a bool, int or levels.

    Example:
        >>> warped, transform = recon.register(fixed_t1, moving_t1, fixed_affine=a1, moving_affine=a2)  # doctest: +SKIP
        >>> labels_on_fixed = transform.apply(moving_labels, order=0)                                 # doctest: +SKIP
    """
    from recon.preprocess._checks import as_affine

    if not isinstance(method, str) or method not in REGISTRATION_METHODS:
        raise ValueError(f"method must be one of {', '.join(REGISTRATION_METHODS)}; got {method!r}")
    fixed_data, was_torch = _register_volume("fixed", fixed)
    moving_data, _ = _register_volume("moving", moving)
    if fixed_data.shape != moving_data.shape and (fixed_affine is None or moving_affine is None):
        missing = "fixed_affine" if fixed_affine is None else "moving_affine"
        raise ValueError(f"{missing} is required: fixed {fixed_data.shape} and moving {moving_data.shape} have "
                         "different shapes, so both affines (voxel -> world mm) must say where they are")
    fa = as_affine("fixed_affine", fixed_affine)
    ma = as_affine("moving_affine", moving_affine)
    if weights is not None and method != "learned":
        raise ValueError(f"weights= is only used by method 'learned', not by method {method!r}")
    if refine is not None and method != "learned":
        raise ValueError(f"refine= is only used by method 'learned', not by method {method!r}")
    if method == "learned":
        from recon.heads.registration import refine_levels, register_with_network
        from recon.train.tasks_heads import load_head

        refine_levels(True if refine is None else refine)  # a bad refine fails before any work

        model, config, _ = load_head("register" if weights is None else weights)
        if config.task != "register":
            raise ValueError(f"weights {str(weights)!r} are a {config.task!r} model, not a registration network")
        transform = register_with_network(model, fixed_data, fa, moving_data, ma,
                                          voxel_size=float(config.options.get("work_voxel", 4.0)),
                                          num_threads=1 if num_threads is None else num_threads,
                                          device=_head_device(device),
                                          refine=True if refine is None else refine)
        warped = transform.apply(moving_data, order=1)
    else:
        from recon.preprocess import register as iterative

        transform = iterative(fixed_data, moving_data, fixed_affine=fa, moving_affine=ma, transform=method,
                              metric=metric, seed=seed, num_threads=num_threads)
        warped = transform.warped
    return (torch.from_numpy(warped) if was_torch else warped), transform
