"""Argument checks shared by the operators (private)."""

from __future__ import annotations

import math
import numbers

import torch


def describe(value: object) -> str:
    """Short description of a received value for error messages."""
    if isinstance(value, torch.Tensor):
        return f"{value.dtype} tensor of shape {tuple(value.shape)}"
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        return f"{dtype} {type(value).__name__} of shape {tuple(shape)}"
    return f"{type(value).__name__} {value!r}"[:200]


def check_tensor(name: str, value: object) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {describe(value)}")
    return value


def check_complex_view(name: str, value: object, min_ndim: int = 3) -> torch.Tensor:
    """Check a real tensor whose last dimension (size 2) holds (real, imag)."""
    value = check_tensor(name, value)
    if value.is_complex():
        raise TypeError(
            f"{name} must be a real tensor with a trailing dimension of size 2 (real, imag); "
            f"got a complex tensor of shape {tuple(value.shape)} - use recon.ops.as_real_view() first"
        )
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {describe(value)}")
    if value.ndim < min_ndim or value.shape[-1] != 2:
        raise ValueError(
            f"{name} must have at least {min_ndim} dimensions with a last dimension of size 2 "
            f"(real, imag), got {describe(value)}"
        )
    return value


def check_mask_broadcasts(mask: object, shape: tuple[int, ...] | torch.Size, target: str) -> torch.Tensor:
    """Check that ``mask`` is a tensor that broadcasts against ``shape`` (the ``target``'s)."""
    mask = check_tensor("mask", mask)
    try:
        torch.broadcast_shapes(mask.shape, tuple(shape))
    except RuntimeError as err:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast against {target} of shape "
            f"{tuple(shape)}; expected e.g. (B, 1, 1, W, 1)"
        ) from err
    return mask


def is_compiling() -> bool:
    """Whether ``torch.compile`` is tracing (eager-only fast paths step aside then)."""
    compiler = getattr(torch, "compiler", None)
    return bool(compiler is not None and getattr(compiler, "is_compiling", lambda: False)())


#: fastMRI's challenge names
CHALLENGES = ("singlecoil", "multicoil")


def check_challenge(value: object, name: str = "challenge") -> str:
    """``value`` if it is ``"singlecoil"`` or ``"multicoil"``, else ``ValueError`` naming ``name``."""
    if not isinstance(value, str) or value not in CHALLENGES:
        raise ValueError(f"{name} must be 'singlecoil' or 'multicoil', got {value!r}")
    return value


def check_int(name: str, value: object, minimum: int = 1, *, allow_none: bool = False) -> int | None:
    """``value`` as a Python int if it is an integer (``int`` or a numpy integer such as
    ``np.int64``; not a bool) ``>= minimum`` (or ``None`` when allowed).

    Raises:
        TypeError: not an integer.
        ValueError: below ``minimum``.
    """
    if value is None and allow_none:
        return None
    what = "a positive int" if minimum == 1 else f"an int >= {minimum}"
    if allow_none:
        what += " or None"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {what}, got {describe(value)}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be {what}, got {value}")
    return value


def sampled_points(kspace: torch.Tensor, coil_dim: int | None = 1) -> torch.Tensor:
    """The mask of measured points of a real-view k-space ``(..., 2)``: any non-zero value.

    The coil dimension ``coil_dim`` (of the k-space, counted before the trailing 2) is reduced
    with ``keepdim=True`` (``None``: no reduction); returns a bool tensor of shape ``(...)``.
    """
    sampled = (kspace != 0).any(dim=-1)
    return sampled if coil_dim is None else sampled.any(dim=coil_dim, keepdim=True)


def check_number(name: str, value: object, *, low: float | None = None, strict: bool = False) -> float:
    """``value`` as a Python float if it is a finite real number (not a bool), ``>= low``
    (``> low`` when ``strict``; no bound when ``low`` is None).

    Raises:
        TypeError: not a real number.
        ValueError: NaN/Inf or below the bound.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {describe(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (value <= low if strict else value < low):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {low}, got {value!r}")
    return value
