"""Crops and pads: exact (no interpolation); the affine is updated so that voxels keep their world position."""

from __future__ import annotations

from typing import Iterable, Sequence

import torch
import torch.nn.functional as F

from recon.preprocess.augment._base import Batch, Params, Transform, check_number, describe

__all__ = ["Crop", "CenterCrop", "RandomCrop", "Pad"]


def _sizes(name: str, size: object) -> list[int | None]:
    if isinstance(size, int) and not isinstance(size, bool):
        size = [size]
    if not isinstance(size, (list, tuple)) or not size or len(size) > 3:
        raise TypeError(f"{name} must be an int or a sequence of ints (None keeps an axis whole), got {describe(size)}")
    out: list[int | None] = []
    for s in size:
        if s is None:
            out.append(None)
        elif isinstance(s, int) and not isinstance(s, bool):
            if s < 1:
                raise ValueError(f"{name} must be positive (or None to keep an axis whole), got {size!r}")
            out.append(s)
        else:
            raise TypeError(f"{name} must hold ints or None, got {size!r}")
    return out


def _resolve_sizes(name: str, sizes: list[int | None], shape: Sequence[int]) -> list[int]:
    nd = len(shape)
    if len(sizes) == 1:
        sizes = sizes * nd
    if len(sizes) != nd:
        raise ValueError(f"{name} has {len(sizes)} entries but the sample is {nd}-D (spatial shape {tuple(shape)})")
    out = [n if s is None else s for s, n in zip(sizes, shape)]
    if any(s > n for s, n in zip(out, shape)):
        raise ValueError(f"{name} {tuple(out)} is larger than the spatial shape {tuple(shape)} of the sample; pad first (Pad)")
    return out


def _translate_affine(batch: Batch, offset: torch.Tensor) -> torch.Tensor | None:
    """Affine after moving voxel ``offset`` (B, nd) to index 0."""
    if batch.affine is None:
        return None
    nd = batch.nd
    a = batch.affine.clone()
    a[:, :nd, nd] = a[:, :nd, nd] + (a[:, :nd, :nd] * offset.to(a).unsqueeze(-2)).sum(-1)
    return a


class Crop(Transform):
    """Crop ``size`` voxels from ``start`` along each spatial axis (exact; new affine returned).

    Args:
        start: first voxel per axis (int or one per axis).
        size: voxels kept per axis; ``None`` keeps the axis from ``start`` to its end (with
            start 0, the whole axis: ``Crop(0, (None, 128, 128))`` crops in-plane only).
        labels: label keys (cropped like the images).

    Raises:
        ValueError: a crop that does not fit inside the sample.
    """

    def __init__(self, start: int | Sequence[int], size: int | None | Sequence[int | None], *, labels: Iterable[str] = ()) -> None:
        super().__init__(labels=labels)
        starts = [start] if isinstance(start, int) and not isinstance(start, bool) else start
        if not isinstance(starts, (list, tuple)) or not starts or len(starts) > 3 or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in starts
        ):
            raise TypeError(f"start must be an int or a sequence of ints, got {describe(start)}")
        if any(s < 0 for s in starts):
            raise ValueError(f"start must be non-negative, got {start!r}")
        self.start = [int(s) for s in starts]
        self.size = _sizes("size", size)

    def param_keys(self) -> tuple[str, ...]:
        return ("start", "size")

    def draw(self, batch: Batch, generator) -> Params:
        shape = batch.spatial_shape
        start = self.start * batch.nd if len(self.start) == 1 else self.start
        if len(start) != batch.nd:
            raise ValueError(f"start has {len(start)} entries but the sample is {batch.nd}-D")
        sizes = self.size * batch.nd if len(self.size) == 1 else self.size
        if len(sizes) == batch.nd:  # None: from start to the end of the axis
            sizes = [max(n - b, 1) if s is None else s for s, b, n in zip(sizes, start, shape)]
        size = _resolve_sizes("size", sizes, shape)
        if any(b + s > n for b, s, n in zip(start, size, shape)):
            raise ValueError(f"crop start {tuple(start)} + size {tuple(size)} exceeds the spatial shape {tuple(shape)}")
        return _crop_params(start, size, batch)

    def apply(self, batch: Batch, params: Params) -> Batch:
        return _crop(batch, params)


def _crop_params(start: Sequence[int], size: Sequence[int], batch: Batch) -> Params:
    B = batch.batch_size
    return {"start": torch.tensor(start, dtype=torch.int64).repeat(B, 1),
            "size": torch.tensor(size, dtype=torch.int64).repeat(B, 1)}


def _crop(batch: Batch, params: Params) -> Batch:
    start = params["start"].cpu()
    size = params["size"].cpu()
    shape = batch.spatial_shape
    if start.shape[1] != batch.nd or size.shape[1] != batch.nd:
        raise ValueError(f"params['start'] and params['size'] must be (B, {batch.nd})")
    if bool(((start + size) > torch.tensor(shape)).any()) or bool((start < 0).any()):
        raise ValueError(f"crop start/size in params exceed the spatial shape {tuple(shape)}")
    sz = size[0].tolist()
    if bool((size != size[0]).any()):
        raise ValueError("all samples of a batch must be cropped to the same size")
    same = bool((start == start[0]).all())
    out = {}
    for key, t in batch.tensors.items():
        if same:
            for axis, (b, s) in enumerate(zip(start[0].tolist(), sz)):
                t = t.narrow(axis + 2, b, s)
            out[key] = t
        else:
            pieces = []
            for i in range(t.shape[0]):
                p = t[i:i + 1]
                for axis, (b, s) in enumerate(zip(start[i].tolist(), sz)):
                    p = p.narrow(axis + 2, b, s)
                pieces.append(p)
            out[key] = torch.cat(pieces, 0)
    return batch.with_tensors(out, affine=_translate_affine(batch, start.to(batch.device)))


class CenterCrop(Transform):
    """Crop to ``size`` around the centre (start ``(n - size) // 2``, fastMRI's rule).

    Args:
        size: voxels per axis (int for all axes, ``None`` keeps an axis whole).
    """

    def __init__(self, size: int | None | Sequence[int | None], *, labels: Iterable[str] = ()) -> None:
        super().__init__(labels=labels)
        self.size = _sizes("size", size)

    def param_keys(self) -> tuple[str, ...]:
        return ("start", "size")

    def draw(self, batch: Batch, generator) -> Params:
        shape = batch.spatial_shape
        size = _resolve_sizes("size", self.size, shape)
        return _crop_params([(n - s) // 2 for n, s in zip(shape, size)], size, batch)

    apply = Crop.apply


class RandomCrop(CenterCrop):
    """Crop to ``size`` at a uniformly random position (per sample; ``None`` keeps an axis whole)."""

    random = True

    def draw(self, batch: Batch, generator: torch.Generator) -> Params:
        shape = batch.spatial_shape
        size = _resolve_sizes("size", self.size, shape)
        span = torch.tensor([n - s + 1 for n, s in zip(shape, size)], dtype=torch.float64, device=generator.device)
        u = torch.rand((batch.batch_size, batch.nd), generator=generator, device=generator.device, dtype=torch.float64)
        start = torch.minimum(torch.floor(u * span), span - 1).to(torch.int64).cpu()
        return {"start": start, "size": torch.tensor(size, dtype=torch.int64).repeat(batch.batch_size, 1)}


class Pad(Transform):
    """Pad spatial axes with a constant (new affine returned: voxels keep their world position).

    Args:
        padding: int (every side), one int per axis (both sides) or one ``(before, after)`` pair
            per axis.
        value: fill value for images (labels are padded with 0).
    """

    def __init__(self, padding: int | Sequence[int] | Sequence[Sequence[int]], value: float = 0.0, *,
                 labels: Iterable[str] = ()) -> None:
        super().__init__(labels=labels)
        if isinstance(padding, int) and not isinstance(padding, bool):
            pairs = [(padding, padding)]
        elif isinstance(padding, (list, tuple)) and padding and all(isinstance(p, int) and not isinstance(p, bool) for p in padding):
            pairs = [(p, p) for p in padding]
        elif isinstance(padding, (list, tuple)) and padding and all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(q, int) for q in p) for p in padding
        ):
            pairs = [tuple(p) for p in padding]
        else:
            raise TypeError(f"padding must be an int, one int per axis or (before, after) pairs, got {describe(padding)}")
        if any(q < 0 for p in pairs for q in p):
            raise ValueError(f"padding must be non-negative, got {padding!r}")
        self.padding = pairs
        self.value = check_number("value", value)

    def param_keys(self) -> tuple[str, ...]:
        return ("before", "after")

    def draw(self, batch: Batch, generator) -> Params:
        pairs = self.padding * batch.nd if len(self.padding) == 1 else self.padding
        if len(pairs) != batch.nd:
            raise ValueError(f"padding has {len(pairs)} entries but the sample is {batch.nd}-D")
        B = batch.batch_size
        return {"before": torch.tensor([p[0] for p in pairs]).repeat(B, 1), "after": torch.tensor([p[1] for p in pairs]).repeat(B, 1)}

    def apply(self, batch: Batch, params: Params) -> Batch:
        before, after = params["before"][0].tolist(), params["after"][0].tolist()
        pad = []
        for b, a in zip(reversed(before), reversed(after)):
            pad += [b, a]
        out = {k: F.pad(t, pad, value=0.0 if k in batch.labels else self.value) for k, t in batch.tensors.items()}
        return batch.with_tensors(out, affine=_translate_affine(batch, -params["before"].to(batch.device)))
