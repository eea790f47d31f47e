"""One call from k-space to image: :func:`reconstruct`.

This module normalises what users hand in (numpy or torch, complex or real view, single- or
multi-coil, with or without slices, any broadcastable mask or none), dispatches to a classical
solver in :mod:`recon.classical` or a learned model in :mod:`recon.models`, and hands back a
magnitude image of the input's kind and leading shape.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import Union

import numpy as np
import torch

from recon.classical import cg_sense, cs_tv, cs_wavelet, espirit_maps, zero_filled
from recon.classical.espirit import calibration_shape, sampling_pattern
from recon.ops._checks import describe
from recon.ops.coils import rss_complex, sens_expand
from recon.ops.fft import ifft2c
from recon.train.checkpoint import bundled_weights, load_model, resolve_weights

__all__ = ["reconstruct", "METHODS", "DEFAULT_METHOD", "bundled_weights", "load_model"]

logger = logging.getLogger(__name__)

#: every accepted ``method``
METHODS = ("zero_filled", "sense", "cs", "tv", "unet", "cascade", "varnet")
#: the method used when none is given (see docs/reconstruct.md for the measurements behind it)
DEFAULT_METHOD = "cs"
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
# learned models


# --------------------------------------------------------------------------------------------
# per-method reconstruction of one batch (B, C, H, W, 2) -> (B, H, W)


def _rss_after_dc(image: torch.Tensor, maps: torch.Tensor, kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Coil images of ``image`` with the measured samples put back, combined by RSS.

    The result is on the scale, and has the noise floor, of the RSS of fully sampled data
    (fastMRI's ``reconstruction_rss``), as a VarNet's output does.
    """
    predicted = sens_expand(image, maps)
    consistent = torch.where(mask.bool(), kspace, predicted)
    return rss_complex(ifft2c(consistent), dim=1)


def _classical(method: str, kspace: torch.Tensor, mask: torch.Tensor, maps: torch.Tensor | None) -> torch.Tensor:
    if method == "zero_filled":
        return zero_filled(kspace, mask)
    if maps is None and kspace.shape[1] > 1:
        h, w = calibration_shape(sampling_pattern(kspace, mask))
        if min(h, w) < MIN_CALIBRATION:
            warnings.warn(
                f"the mask has no usable fully sampled k-space centre (found {h} x {w}, ESPIRiT needs "
                f"{MIN_CALIBRATION} x {MIN_CALIBRATION}): reconstructing each coil separately and "
                "combining them by RSS; pass sens_maps= for a SENSE-type reconstruction",
                RuntimeWarning,
                stacklevel=3,
            )
            b, c = kspace.shape[:2]
            coils = kspace.reshape(b * c, 1, *kspace.shape[2:])
            coil_mask = mask.repeat_interleave(c, dim=0) if mask.shape[0] == b and b > 1 else mask
            image = _classical(method, coils, coil_mask, None)  # (B * C, H, W), one coil each
            return image.reshape(b, c, *image.shape[-2:]).pow(2).sum(dim=1).sqrt()
        maps = espirit_maps(kspace, mask)
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


def _learned(method: str, model: torch.nn.Module, kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    kspace = kspace.float()
    if method == "unet":
        image = rss_complex(ifft2c(kspace), dim=1)  # (B, H, W)
        mean = image.mean(dim=(-2, -1), keepdim=True)
        std = image.std(dim=(-2, -1), keepdim=True).clamp_min(1e-11)
        out = model(((image - mean) / std).clamp(-6, 6).unsqueeze(1))[:, 0]
        return out * std + mean
    if kspace.shape[1] == 1 and method == "varnet":
        raise ValueError("method 'varnet' needs multi-coil k-space; use 'unet' or 'cascade' for single-coil data")
    h, w = calibration_shape(sampling_pattern(kspace, mask))
    num_low = torch.full((kspace.shape[0],), max(w, 1), dtype=torch.long, device=kspace.device)
    out = model(kspace, _column_mask(mask), num_low)
    if out.ndim == 5:  # complex image or coil images -> magnitude
        out = rss_complex(out, dim=1)
    elif out.ndim == 4:
        out = out[:, 0]
    return out


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
) -> Array:
    """Reconstruct magnitude images from (undersampled) k-space.

    Args:
        kspace: fastMRI layout, numpy or torch, complex dtype or real with a trailing 2:
            multi-coil ``(coils, H, W)`` or ``(slices, coils, H, W)``; single-coil ``(H, W)``
            or, with ``single_coil=True``, ``(slices, H, W)``.
        mask: sampling mask broadcastable to the k-space: a column mask ``(W,)``, a 2-D mask
            ``(H, W)``, fastMRI's ``(1, 1, W, 1)``, ...; 0/1 or boolean.  ``None`` infers it
            from the non-zero points of ``kspace``.  Points outside the mask are ignored.
        method: ``"cs"`` (default: ESPIRiT maps + L1-wavelet compressed sensing; good on any
            input without tuning, see docs/reconstruct.md), ``"zero_filled"``, ``"sense"``
            (Tikhonov CG-SENSE), ``"tv"`` (total variation), or a learned model:
            ``"unet"``, ``"cascade"``, ``"varnet"``.
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

    Returns:
        Magnitude images ``(H, W)`` or ``(slices, H, W)`` (float32, float64 for complex128
        input), numpy for numpy input and torch for torch input, on the scale of the RSS of
        the fully sampled data.

    Raises:
        TypeError: non-complex (real-valued) k-space, or arguments of the wrong type.
        ValueError: a wrong rank, a mask that does not broadcast or samples nothing, NaN/Inf,
            all-zero k-space, an unknown method, weights that do not fit the model.
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
    out_device = data.device
    shape = tuple(data.shape[:-1])
    slices, coils = _layout(shape, single_coil)
    if not bool(torch.isfinite(data).all()):
        raise ValueError("kspace contains NaN or Inf values")
    if not bool((data != 0).any()):
        raise ValueError("kspace is all zero: there is nothing to reconstruct")
    if batch_size is not None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int):
            raise TypeError(f"batch_size must be a positive int or None, got {describe(batch_size)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive int or None, got {batch_size}")
    if weights is not None and method not in LEARNED:
        raise ValueError(f"weights= is only used by the learned methods {LEARNED}, not by method {method!r}")
    dev = _device(device, kspace)
    dtype = torch.float64 if data.dtype == torch.float64 else torch.float32
    height, width = shape[-2:]
    data = data.reshape(slices, coils, height, width, 2)

    if mask is None:
        sampled = (data != 0).any(dim=-1).any(dim=1, keepdim=True)  # (B, 1, H, W)
        mask_t = sampled.to(torch.float64)
    else:
        mask_t = _prepare_mask(mask, shape).reshape(slices, coils, height, width)
        mask_t = mask_t.amax(dim=1, keepdim=True)
    if not bool((mask_t != 0).any()):
        raise ValueError("mask samples no k-space point")
    mask_t = mask_t.unsqueeze(-1)  # (B, 1, H, W, 1)

    maps_t = None
    if sens_maps is not None:
        maps_t = _prepare_maps(sens_maps, shape, method, slices, coils)

    model = None
    if method in LEARNED:
        path = resolve_weights(method, weights, bundled_weights())
        model = load_model(path, model_name=method, map_location=dev, cached=True)[0]
        dtype = torch.float32
    _check_geometry(method, height, width, model)

    if batch_size is None:
        # real elements of k-space per batch: large on GPUs; on the CPU the solvers work in
        # cache-sized groups anyway, so small batches cost nothing and give a live progress bar
        budget = (2**25 if method in LEARNED else 2**26) if dev.type != "cpu" else 2**21
        batch_size = max(1, budget // max(1, coils * height * width * 2))
    starts = list(range(0, slices, batch_size))
    outputs = []
    from tqdm.auto import tqdm

    with torch.inference_mode():
        bar = tqdm(starts, desc=f"recon {method}", unit="batch", disable=not _show_progress(progress, len(starts)))
        for start in bar:
            stop = min(slices, start + batch_size)
            k = data[start:stop].to(device=dev, dtype=dtype)
            m = mask_t[start:stop].to(device=dev, dtype=dtype)
            k = k * m
            if model is not None:
                out = _learned(method, model, k, m)
            else:
                s = maps_t[start:stop].to(device=dev, dtype=dtype) if maps_t is not None else None
                out = _classical(method, k, m, s)
            outputs.append(out.to(out_device))
    result = torch.cat(outputs).to(torch.float64 if data.dtype == torch.float64 else torch.float32)
    lead = (slices,) if len(shape) == 4 or (len(shape) == 3 and single_coil) else ()
    result = result.reshape(*lead, *result.shape[-2:])
    if was_numpy:
        return result.cpu().numpy()
    return result
