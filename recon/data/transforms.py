"""Sample transforms per model family, typed samples, and a collate for mixed matrix sizes.

A transform turns a raw :class:`~recon.data.SliceDataset` sample
``(kspace, mask, target, attrs, fname, slice_num)`` into model input:

* :class:`UnetDataTransform` (image domain: U-Net and other image-to-image networks):
  zero-filled image, cropped to the reconSpace size, RSS-combined, instance-normalised.
* :class:`VarNetDataTransform` (k-space domain: VarNet, cascades): masked k-space, the mask
  with the header's phase-encoding padding zeroed, ``num_low_frequencies``, target, crop
  size and max value.

Both reproduce ``fastmri.data.transforms`` number for number. Masks come from any callable
``mask_func(shape, offset=None, seed=None) -> (mask, num_low_frequencies)`` (the
``recon.masks`` / ``fastmri.data.subsample`` API), applied with
:func:`recon.masks.apply_mask` semantics. With ``use_seed=True`` (validation) the
seed is fastMRI's per-volume ``tuple(map(ord, fname))``, so all slices of a volume share a
mask on every run; with ``use_seed=False`` (training) the mask function draws a fresh mask
for every sample.

Cost: the transforms never copy k-space they do not have to. ``to_tensor`` is a view, and
a column mask is applied as one float multiply over the interleaved (real, imag) values.
Called directly, a transform writes the masked k-space into a new array and leaves its
input alone. :class:`~recon.data.SliceDataset` instead calls ``transform.call_owned(...)``
when the transform has it, handing over the array it has just read: the mask is then
applied in place, saving a k-space-sized allocation and pass (``benchmarks/data.py``).
Other transforms (fastMRI's, your own) are simply called.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
import torch

from recon.masks import apply_mask, volume_seed
from recon.ops import center_crop, complex_abs, complex_center_crop, ifft2c, rss
from recon.ops._checks import check_challenge

__all__ = [
    "MaskFunc",
    "UnetSample",
    "VarNetSample",
    "UnetDataTransform",
    "VarNetDataTransform",
    "to_tensor",
    "volume_seed",
    "collate_samples",
]

MaskFunc = Callable[..., tuple[torch.Tensor, int]]


def to_tensor(data: np.ndarray) -> torch.Tensor:
    """Complex numpy array -> real tensor with a trailing (real, imag) dim; real arrays as-is.

    Shares memory with ``data`` when it is contiguous (no copy).

    Args:
        data: any numpy array.

    Returns:
        ``(..., 2)`` float tensor for complex input, else a tensor of the same shape.
    """
    if not isinstance(data, np.ndarray):
        raise TypeError(f"data must be a numpy array, got {type(data).__name__}")
    tensor = torch.from_numpy(np.ascontiguousarray(data))
    return torch.view_as_real(tensor) if tensor.is_complex() else tensor


def _mask_kspace(
    kspace: np.ndarray,
    mask_func: MaskFunc,
    seed: Sequence[int] | None,
    padding: tuple[int, int] | None,
    inplace: bool,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``recon.masks.apply_mask`` for a numpy k-space, without the intermediate copies.

    A 1-D (column) mask is applied by multiplying the interleaved float view of the complex
    array with the mask repeated twice - one pass, in place when ``inplace``. Anything else
    (2-D masks, non-contiguous or non-complex input) goes through ``apply_mask``. Values
    equal those of ``data * mask + 0.0`` up to the sign of zeros.
    """
    if not isinstance(kspace, np.ndarray):
        raise TypeError(f"kspace must be a numpy array, got {type(kspace).__name__}")
    width = kspace.shape[-1]
    fast = kspace.dtype in (np.complex64, np.complex128) and kspace.flags.c_contiguous and kspace.ndim >= 2
    if not fast:
        return apply_mask(to_tensor(kspace), mask_func, seed=seed, padding=padding)
    shape = (1,) * (kspace.ndim - 2) + tuple(kspace.shape[-2:]) + (2,)
    mask, num_low_frequencies = mask_func(shape, None, seed)
    if padding is not None:
        mask[..., : padding[0], :] = 0
        mask[..., padding[1] :, :] = 0
    if mask.numel() != width:  # not a column mask: the general path
        masked = to_tensor(kspace) * mask + 0.0
        return masked, mask, num_low_frequencies
    real_dtype = np.float32 if kspace.dtype == np.complex64 else np.float64
    weights = np.repeat(mask.reshape(-1).cpu().numpy().astype(real_dtype), 2)
    flat = kspace.view(real_dtype)
    if inplace and kspace.flags.writeable:
        np.multiply(flat, weights, out=flat)
        out = kspace
    else:
        out = np.multiply(flat, weights).view(kspace.dtype)
    return to_tensor(out), mask, num_low_frequencies


class UnetSample(NamedTuple):
    """Image-domain sample (fastMRI's ``UnetSample``).

    Attributes:
        image: normalised zero-filled magnitude ``(h, w)``, clamped to [-6, 6].
        target: normalised target ``(h, w)`` (``tensor([0])`` when the file has none).
        mean: mean used for normalisation (0-d).
        std: standard deviation used for normalisation (0-d).
        fname: file name.
        slice_num: slice index.
        max_value: the file's ``max`` attribute (0.0 when absent).
    """

    image: torch.Tensor
    target: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    fname: str
    slice_num: int
    max_value: float


class VarNetSample(NamedTuple):
    """k-space sample (fastMRI's ``VarNetSample``).

    Attributes:
        masked_kspace: ``(coils, H, W, 2)`` (``(H, W, 2)`` for single-coil).
        mask: bool ``(1, 1, W, 1)`` (``(1, W, 1)`` single-coil), padding columns False.
        num_low_frequencies: fully-sampled centre lines (0 for a file's own mask).
        target: ``(h, w)`` target (``tensor(0)`` when the file has none).
        fname: file name.
        slice_num: slice index.
        max_value: the file's ``max`` attribute (0.0 without a target).
        crop_size: reconSpace size ``(h, w)`` from the header.
    """

    masked_kspace: torch.Tensor
    mask: torch.Tensor
    num_low_frequencies: int | None
    target: torch.Tensor
    fname: str
    slice_num: int
    max_value: float
    crop_size: tuple[int, int]


def _check_mask_func(mask_func: object) -> None:
    if mask_func is not None and not callable(mask_func):
        raise TypeError(
            f"mask_func must be callable (shape, offset, seed) -> (mask, num_low_frequencies) or None, "
            f"got {type(mask_func).__name__}"
        )


class _SampleTransform:
    """What the sample transforms share: calling conventions around ``_apply``."""

    inplace: bool

    def __call__(
        self,
        kspace: np.ndarray,
        mask: np.ndarray | None,
        target: np.ndarray | None,
        attrs: dict[str, Any],
        fname: str,
        slice_num: int,
    ) -> Any:
        """Transform one raw sample; ``kspace`` is left untouched unless ``inplace``."""
        return self._apply(kspace, mask, target, attrs, fname, slice_num, self.inplace)

    def call_owned(self, kspace, mask, target, attrs, fname, slice_num) -> Any:
        """Like calling the transform, but ``kspace`` may be overwritten: for callers that
        hand over an array nobody else holds (``SliceDataset`` does, for every sample)."""
        return self._apply(kspace, mask, target, attrs, fname, slice_num, True)

    def _apply(self, kspace, mask, target, attrs, fname, slice_num, inplace: bool) -> Any:
        raise NotImplementedError


class UnetDataTransform(_SampleTransform):
    """Raw sample -> :class:`UnetSample` (zero-filled, cropped, RSS, normalised).

    Args:
        which_challenge: ``"multicoil"`` (RSS over coils) or ``"singlecoil"``.
        mask_func: undersampling mask function; None keeps k-space as stored (test files
            are already undersampled).
        use_seed: seed masks per volume (validation); False draws fresh masks (training).
        inplace: always mask the given k-space array in place instead of a copy.
            :class:`~recon.data.SliceDataset` needs no flag: it calls :meth:`call_owned`
            with the array it just read, which masks in place.

    Example:
        >>> from fastmri.data.subsample import RandomMaskFunc
        >>> transform = UnetDataTransform("multicoil", RandomMaskFunc([0.08], [4]))
    """

    def __init__(
        self,
        which_challenge: str,
        mask_func: MaskFunc | None = None,
        use_seed: bool = True,
        inplace: bool = False,
    ) -> None:
        check_challenge(which_challenge, "which_challenge")
        _check_mask_func(mask_func)
        self.which_challenge = which_challenge
        self.mask_func = mask_func
        self.use_seed = bool(use_seed)
        self.inplace = bool(inplace)

    def _apply(self, kspace, mask, target, attrs, fname, slice_num, inplace: bool) -> UnetSample:
        max_value = attrs["max"] if "max" in attrs else 0.0
        if self.mask_func is not None:
            seed = volume_seed(fname) if self.use_seed else None
            kspace_torch = _mask_kspace(kspace, self.mask_func, seed, None, inplace)[0]
        else:
            kspace_torch = to_tensor(kspace)
        image = ifft2c(kspace_torch)
        if target is not None:
            crop_size = (target.shape[-2], target.shape[-1])
        else:
            crop_size = (attrs["recon_size"][0], attrs["recon_size"][1])
        if image.shape[-2] < crop_size[1]:  # fastMRI's guard for narrow (FLAIR 203) scans
            crop_size = (image.shape[-2], image.shape[-2])
        image = complex_abs(complex_center_crop(image, crop_size))
        if self.which_challenge == "multicoil":
            image = rss(image)
        mean, std = image.mean(), image.std()
        image = ((image - mean) / (std + 1e-11)).clamp(-6, 6)
        if target is not None:
            target_torch = center_crop(to_tensor(target), crop_size)
            target_torch = ((target_torch - mean) / (std + 1e-11)).clamp(-6, 6)
        else:
            target_torch = torch.tensor([0.0])
        return UnetSample(image, target_torch, mean, std, fname, slice_num, max_value)


class VarNetDataTransform(_SampleTransform):
    """Raw sample -> :class:`VarNetSample` (masked k-space and mask, header padding applied).

    Args:
        mask_func: undersampling mask function; None uses the file's own ``mask`` dataset
            (test files), with ``num_low_frequencies = 0`` as in fastMRI.
        use_seed: seed masks per volume (validation); False draws fresh masks (training).
        inplace: always mask the given k-space array in place instead of a copy.
            :class:`~recon.data.SliceDataset` needs no flag: it calls :meth:`call_owned`
            with the array it just read, which masks in place.

    Raises:
        ValueError: (at call time) no ``mask_func`` and the file has no ``mask``.
    """

    def __init__(self, mask_func: MaskFunc | None = None, use_seed: bool = True, inplace: bool = False) -> None:
        _check_mask_func(mask_func)
        self.mask_func = mask_func
        self.use_seed = bool(use_seed)
        self.inplace = bool(inplace)

    def _apply(self, kspace, mask, target, attrs, fname, slice_num, inplace: bool) -> VarNetSample:
        if target is not None:
            target_torch = to_tensor(target)
            max_value = attrs["max"]
        else:
            target_torch = torch.tensor(0)
            max_value = 0.0
        acq_start, acq_end = attrs["padding_left"], attrs["padding_right"]
        crop_size = (attrs["recon_size"][0], attrs["recon_size"][1])
        if self.mask_func is not None:
            seed = volume_seed(fname) if self.use_seed else None
            masked_kspace, mask_torch, num_low = _mask_kspace(
                kspace, self.mask_func, seed, (acq_start, acq_end), inplace
            )
        else:
            kspace_torch = to_tensor(kspace)
            if mask is None:
                raise ValueError(
                    f"{fname}: no mask_func was given and the file has no 'mask' dataset to use"
                )
            mask_shape = [1] * kspace_torch.ndim
            mask_shape[-2] = kspace_torch.shape[-2]
            mask_torch = torch.from_numpy(np.asarray(mask).astype(np.float32)).reshape(mask_shape)
            mask_torch[..., :acq_start, :] = 0
            mask_torch[..., acq_end:, :] = 0
            masked_kspace, num_low = kspace_torch, 0
        return VarNetSample(
            masked_kspace=masked_kspace,
            mask=mask_torch.to(torch.bool),
            num_low_frequencies=num_low,
            target=target_torch,
            fname=fname,
            slice_num=slice_num,
            max_value=max_value,
            crop_size=crop_size,
        )


# -- collate ----------------------------------------------------------------------------
def _pad_to(tensor: torch.Tensor, shape: Sequence[int], spatial: tuple[int, int]) -> torch.Tensor:
    """Zero-pad ``tensor`` to ``shape`` keeping index ``n // 2`` at ``N // 2`` on the two
    ``spatial`` dims (the k-space/FFT centre convention), and at the start elsewhere."""
    if tuple(tensor.shape) == tuple(shape):
        return tensor
    out = tensor.new_zeros(shape)
    index = []
    for dim, (n, big) in enumerate(zip(tensor.shape, shape)):
        start = big // 2 - n // 2 if dim in spatial else 0
        index.append(slice(start, start + n))
    out[tuple(index)] = tensor
    return out


def _spatial_dims(name: str, ndim: int) -> tuple[int, int]:
    if name in ("masked_kspace", "mask"):
        return (ndim - 3, ndim - 2)
    return (ndim - 2, ndim - 1)


def collate_samples(batch: Sequence[Any]) -> Any:
    """Collate typed samples whose matrix sizes may differ.

    Tensors of equal shape are stacked. Tensors of different shapes (k-space, masks, images
    and targets of scans with different matrices or coil counts) are zero-padded to the
    largest size first: spatially centred with the FFT centre convention (index ``n // 2``
    lands on ``N // 2``), so padded k-space is still centred and padded mask columns read
    as not sampled; extra coils are zero coils. Each sample's own ``crop_size`` is kept,
    so losses can crop back. Strings are gathered into lists, numbers into tensors.

    Args:
        batch: a list of samples of one NamedTuple type (:class:`UnetSample`,
            :class:`VarNetSample`, or any NamedTuple of tensors, numbers and strings).

    Returns:
        The same NamedTuple type with batched fields; ``crop_size`` becomes a ``(B, 2)``
        long tensor.

    Raises:
        ValueError: an empty batch, or mixed sample types.
    """
    if len(batch) == 0:
        raise ValueError("batch must contain at least one sample, got an empty batch")
    kind = type(batch[0])
    if not hasattr(kind, "_fields") or any(type(sample) is not kind for sample in batch):
        raise ValueError(
            f"batch must be NamedTuple samples of one type, got {sorted({type(s).__name__ for s in batch})}"
        )
    fields = {}
    for name in kind._fields:
        values = [getattr(sample, name) for sample in batch]
        first = values[0]
        if isinstance(first, torch.Tensor):
            shapes = {tuple(v.shape) for v in values}
            if len(shapes) > 1:
                ndims = {len(s) for s in shapes}
                if len(ndims) > 1:
                    raise ValueError(f"field {name!r} has tensors of different ranks: {sorted(shapes)}")
                big = [max(s[d] for s in shapes) for d in range(first.ndim)]
                spatial = _spatial_dims(name, first.ndim)
                values = [_pad_to(v, big, spatial) for v in values]
            fields[name] = torch.stack(values)
        elif isinstance(first, str):
            fields[name] = list(values)
        elif name == "crop_size" or (isinstance(first, tuple) and all(isinstance(x, int) for x in first)):
            fields[name] = torch.tensor([list(v) for v in values], dtype=torch.long)
        elif isinstance(first, (int, float, np.integer, np.floating)):
            fields[name] = torch.tensor(
                [float(v) for v in values] if any(isinstance(v, (float, np.floating)) for v in values) else values
            )
        else:
            fields[name] = list(values)
    return kind(**fields)
