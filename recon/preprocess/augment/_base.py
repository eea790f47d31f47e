"""Samples, parameters and the transform base class of :mod:`recon.preprocess.augment` (private).

A *sample* is either a tensor or a dict:

* a tensor ``(C, H, W)`` (2-D slice) or ``(C, D, H, W)`` (3-D volume); with ``batched=True``
  ``(B, C, H, W)`` or ``(B, C, D, H, W)``;
* a dict of such tensors with the same spatial shape (``{"t1": ..., "flair": ..., "label": ...}``),
  plus optionally the reserved key ``"affine"``: the voxel-to-world matrix (4x4, NIfTI/RAS+, as
  nibabel; ``(B, 4, 4)`` for a batch; a 2-D slice takes a 3x3 or a 4x4 whose first two axes are
  used). Other non-tensor entries (names, paths) pass through untouched.

Internally every sample is a :class:`Batch`: tensors ``(B, C, *spatial)``, the keys that hold
labels, and the affine as a float64 ``(B, nd + 1, nd + 1)`` tensor on the data's device.

Parameters drawn by a random transform are a dict of tensors whose first dimension is the batch
(``B = 1`` for an unbatched sample); they are what :meth:`Transform.replay` takes back.
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch

from recon.ops._checks import check_number, describe

__all__ = ["Transform", "Batch", "Params"]

Params = dict  # dict[str, torch.Tensor], first dimension = batch

AFFINE_KEY = "affine"


# ----------------------------------------------------------------------------------- checks
def check_probability(name: str, p: object) -> float:
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise TypeError(f"{name} must be a probability (a number in [0, 1]), got {describe(p)}")
    if not 0.0 <= float(p) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {p!r}")
    return float(p)


def check_positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {describe(value)}")
    if int(value) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def as_number_list(name: str, value: object) -> list[float]:
    """A number or a sequence of numbers as a list of floats (TypeError otherwise)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().tolist()
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return [float(value)]
    if isinstance(value, (list, tuple)) and value and all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value
    ):
        out = [float(v) for v in value]
        if not all(np.isfinite(out)):
            raise ValueError(f"{name} must be finite numbers, got {value!r}")
        return out
    raise TypeError(f"{name} must be a number or a non-empty sequence of numbers, got {describe(value)}")


def check_generator(generator: object, device: torch.device) -> torch.Generator:
    """The caller's generator (on the data's device type), or a fresh unpredictable one.

    ``generator=None`` makes a new generator seeded from the operating system's entropy: the
    result is not reproducible, but the global RNG is neither read nor changed.
    """
    if generator is None:
        seed = int.from_bytes(os.urandom(8), "little") & ((1 << 63) - 1)
        return torch.Generator(device=device).manual_seed(seed)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {describe(generator)}")
    if generator.device.type != device.type:
        raise ValueError(
            f"generator must be on the data's device type ({device.type}), got a generator on "
            f"{generator.device}; create it with torch.Generator(device={str(device)!r})"
        )
    return generator


def uniform(generator: torch.Generator, low: torch.Tensor, high: torch.Tensor, batch: int) -> torch.Tensor:
    """``(batch, *low.shape)`` float64 draws, uniform in ``[low, high)`` (tensors on the generator's device)."""
    u = torch.rand((batch, *low.shape), generator=generator, device=generator.device, dtype=torch.float64)
    return low + (high - low) * u


def draw_seeds(generator: torch.Generator, batch: int) -> torch.Tensor:
    """``(batch,)`` int64 seeds for per-sample noise generators."""
    return torch.randint(0, 2**62, (batch,), generator=generator, device=generator.device, dtype=torch.int64)


def seeded(seed: torch.Tensor | int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(int(seed))


# ----------------------------------------------------------------------------------- samples
@dataclass
class Batch:
    """Internal normalised sample: every tensor ``(B, C, *spatial)``."""

    tensors: dict[str, torch.Tensor]
    labels: frozenset
    affine: torch.Tensor | None  # (B, nd + 1, nd + 1) float64
    nd: int
    # how to give it back
    kind: str = "tensor"  # "tensor" | "dict"
    batched: bool = False
    extras: dict = field(default_factory=dict)
    affine_template: Any = None

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return tuple(next(iter(self.tensors.values())).shape[2:])

    @property
    def batch_size(self) -> int:
        return next(iter(self.tensors.values())).shape[0]

    @property
    def device(self) -> torch.device:
        return next(iter(self.tensors.values())).device

    def image_keys(self) -> list[str]:
        return [k for k in self.tensors if k not in self.labels]

    def label_keys(self) -> list[str]:
        return [k for k in self.tensors if k in self.labels]

    def with_tensors(self, tensors: Mapping[str, torch.Tensor], affine: torch.Tensor | None | str = "keep") -> "Batch":
        return replace(self, tensors=dict(tensors), affine=self.affine if isinstance(affine, str) else affine)


def _spatial_dims(ndim: int, batched: bool) -> int | None:
    offset = 2 if batched else 1
    nd = ndim - offset
    return nd if nd in (2, 3) else None


def _expected(batched: bool) -> str:
    return "(B, C, H, W) or (B, C, D, H, W)" if batched else "(C, H, W) or (C, D, H, W)"


def to_batch(sample: object, *, batched: bool, labels: Iterable[str]) -> Batch:
    """Normalise a tensor or dict sample to a :class:`Batch` (validating shapes)."""
    if isinstance(batched, (bool, np.bool_)) is False:
        raise TypeError(f"batched must be a bool, got {describe(batched)}")
    labels = frozenset(labels)
    if isinstance(sample, torch.Tensor):
        tensors = {"image": sample}
        kind, extras, affine_in = "tensor", {}, None
    elif isinstance(sample, Mapping):
        tensors, extras = {}, {}
        affine_in = None
        for key, value in sample.items():
            if key == AFFINE_KEY:
                affine_in = value
            elif isinstance(value, torch.Tensor):
                tensors[key] = value
            elif isinstance(value, np.ndarray):
                raise TypeError(
                    f"sample[{key!r}] must be a torch.Tensor, got {describe(value)}; convert it with torch.from_numpy"
                )
            else:
                extras[key] = value
        if not tensors:
            raise ValueError(f"sample must hold at least one tensor, got keys {sorted(map(str, sample))}")
        kind = "dict"
        unknown = labels - set(tensors)
        if unknown:
            raise ValueError(f"labels names keys {sorted(unknown)} that are not tensors of the sample (keys {sorted(tensors)})")
    else:
        raise TypeError(f"sample must be a torch.Tensor or a dict of tensors, got {describe(sample)}")

    nd = None
    shapes: dict[str, tuple[int, ...]] = {}
    device = None
    for key, t in tensors.items():
        name = "sample" if kind == "tensor" else f"sample[{key!r}]"
        if t.is_complex():
            raise TypeError(f"{name} must be a real tensor (take the magnitude first), got {describe(t)}")
        this_nd = _spatial_dims(t.ndim, batched)
        if this_nd is None:
            raise ValueError(
                f"{name} must be {_expected(batched)}{' (pass batched=True for a batch)' if not batched and t.ndim == 5 else ''}, "
                f"got {t.ndim}-D tensor of shape {tuple(t.shape)}"
                + ("; add a channel dimension with .unsqueeze(0)" if t.ndim == 2 else "")
            )
        if nd is None:
            nd = this_nd
        shapes[key] = tuple(t.shape[(2 if batched else 1):])
        lead = t.shape[0] if batched else 1
        shapes[key] = (lead,) + shapes[key]
        if device is None:
            device = t.device
        elif t.device != device:
            raise ValueError(f"all tensors of the sample must be on one device, got {device} and {t.device} (key {key!r})")
        if 0 in t.shape:
            raise ValueError(f"{name} must not be empty, got shape {tuple(t.shape)}")
    first = next(iter(shapes))
    different = [k for k, s in shapes.items() if s != shapes[first]]
    if different:
        listing = ", ".join(f"{k!r}: {shapes[k][1:]}" for k in [first] + different)
        raise ValueError(
            f"all images of a sample must have the same {'batch size and ' if batched else ''}spatial shape; "
            f"keys {[first] + different} differ ({listing})"
        )
    if not batched:
        tensors = {k: t.unsqueeze(0) for k, t in tensors.items()}
    B = next(iter(tensors.values())).shape[0]
    affine = None if affine_in is None else _parse_affine(affine_in, nd, B, batched, device)
    return Batch(tensors=tensors, labels=labels, affine=affine, nd=nd, kind=kind, batched=batched,
                 extras=extras, affine_template=affine_in)


def _parse_affine(value: object, nd: int, B: int, batched: bool, device: torch.device) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        a = torch.from_numpy(np.asarray(value, dtype=np.float64))
    elif isinstance(value, torch.Tensor):
        a = value.detach().to(dtype=torch.float64)
    else:
        raise TypeError(f"sample['affine'] must be a 4x4 numpy array or tensor, got {describe(value)}")
    if a.ndim == 2:
        a = a.unsqueeze(0).expand(B, *a.shape)
    good = a.ndim == 3 and a.shape[0] == B and a.shape[-1] == a.shape[-2] and a.shape[-1] in ((4,) if nd == 3 else (3, 4))
    if not good:
        raise ValueError(
            f"sample['affine'] must be {'(4, 4)' if nd == 3 else '(3, 3) or (4, 4)'}"
            f"{f' or ({B}, 4, 4)' if batched else ''} for {nd}-D data, got shape {tuple(a.shape)}"
        )
    if nd == 2 and a.shape[-1] == 4:
        idx = torch.tensor([0, 1, 3])
        a = a[:, idx][:, :, idx]
    lin = a[:, :nd, :nd]
    det = lin[:, 0, 0] * lin[:, 1, 1] - lin[:, 0, 1] * lin[:, 1, 0] if nd == 2 else (
        lin[:, 0, 0] * (lin[:, 1, 1] * lin[:, 2, 2] - lin[:, 1, 2] * lin[:, 2, 1])
        - lin[:, 0, 1] * (lin[:, 1, 0] * lin[:, 2, 2] - lin[:, 1, 2] * lin[:, 2, 0])
        + lin[:, 0, 2] * (lin[:, 1, 0] * lin[:, 2, 1] - lin[:, 1, 1] * lin[:, 2, 0]))
    if not torch.isfinite(a).all() or (det.abs() < 1e-12).any():
        raise ValueError("sample['affine'] must be finite and invertible")
    return a.to(device).contiguous()


def from_batch(batch: Batch) -> object:
    """Give a :class:`Batch` back in the caller's form (tensor or dict, batched or not)."""
    tensors = batch.tensors if batch.batched else {k: t.squeeze(0) for k, t in batch.tensors.items()}
    if batch.kind == "tensor":
        return tensors["image"]
    out: dict[str, Any] = dict(batch.extras)
    out.update(tensors)
    if batch.affine_template is not None:
        out[AFFINE_KEY] = _affine_out(batch)
    return out


def _affine_out(batch: Batch) -> object:
    template = batch.affine_template
    a = batch.affine
    if batch.nd == 2 and template.shape[-1] == 4:
        full = torch.as_tensor(np.asarray(template) if not isinstance(template, torch.Tensor) else template.detach().cpu(),
                               dtype=torch.float64).clone()
        if full.ndim == 2:
            full = full.unsqueeze(0).expand(a.shape[0], 4, 4).clone()
        idx = [0, 1, 3]
        full = full.to(a.device)
        for i, r in enumerate(idx):
            for j, c in enumerate(idx):
                full[:, r, c] = a[:, i, j]
        a = full
    if template.ndim == 2 and not batch.batched:
        a = a[0]
    elif template.ndim == 2 and batch.batched and bool((a == a[:1]).all()):
        a = a[0]
    if isinstance(template, np.ndarray):
        return a.cpu().numpy().astype(template.dtype if np.issubdtype(template.dtype, np.floating) else np.float64)
    return a.to(device=template.device, dtype=template.dtype if template.is_floating_point() else torch.float64)


def check_params(params: object, keys: Sequence[str], B: int, owner: str) -> dict:
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be the dict returned by {owner} with return_params=True, got {describe(params)}")
    missing = [k for k in keys if k not in params]
    if missing:
        raise ValueError(f"params for {owner} lack the entries {missing} (got {sorted(params)})")
    for k in keys:
        v = params[k]
        if not isinstance(v, torch.Tensor) or v.ndim == 0 or v.shape[0] != B:
            raise ValueError(f"params[{k!r}] must be a tensor with a first (batch) dimension of {B}, got {describe(v)}")
    return dict(params)


# ----------------------------------------------------------------------------------- base class
class Transform:
    """Base of every transform: validate the sample, draw parameters, apply them.

    Subclasses implement :meth:`draw` (parameters for a batch; deterministic transforms return
    their fixed values) and :meth:`apply` (a pure function of the batch and the parameters).

    Call: ``out = t(sample, generator=g)``; ``out, params = t(sample, generator=g,
    return_params=True)``; ``t.replay(sample, params)`` reproduces ``out`` bit for bit.
    """

    #: does the transform draw random parameters?
    random: bool = False

    def __init__(self, *, labels: Iterable[str] = ()) -> None:
        if isinstance(labels, str):
            labels = (labels,)
        try:
            self.labels = tuple(str(k) for k in labels)
        except TypeError as err:
            raise TypeError(f"labels must be a sequence of keys, got {describe(labels)}") from err

    # -- to implement
    def draw(self, batch: Batch, generator: torch.Generator) -> Params:  # pragma: no cover - abstract
        raise NotImplementedError

    def apply(self, batch: Batch, params: Params) -> Batch:  # pragma: no cover - abstract
        raise NotImplementedError

    def param_keys(self) -> tuple[str, ...]:
        return ()

    # -- public API
    def __call__(self, sample: object, *, generator: torch.Generator | None = None, batched: bool = False,
                 return_params: bool = False) -> object:
        """Apply to ``sample`` (tensor or dict; see :mod:`recon.preprocess.augment`).

        Args:
            sample: ``(C, H, W)``/``(C, D, H, W)`` tensor or dict of them (with ``batched=True``
                a leading batch dimension); optional ``"affine"`` entry.
            generator: ``torch.Generator`` on the data's device type for the random draws;
                ``None`` draws a fresh unpredictable seed (the global RNG is never used).
            batched: the tensors have a leading batch dimension; each sample gets its own
                parameters.
            return_params: also return the parameters drawn (for :meth:`replay`).

        Returns:
            The transformed sample in the input's form, and the parameters if asked.
        """
        batch = to_batch(sample, batched=batched, labels=self.labels)
        generator = check_generator(generator, batch.device) if self.random else None
        out, params = self._run(batch, generator)
        result = from_batch(out)
        return (result, params) if return_params else result

    def replay(self, sample: object, params: Params, *, batched: bool = False) -> object:
        """Apply the transform with the given (previously drawn) parameters: no random draw."""
        batch = to_batch(sample, batched=batched, labels=self.labels)
        return from_batch(self._replay(batch, params))

    # -- internal, used by Compose
    def _run(self, batch: Batch, generator: torch.Generator | None) -> tuple[Batch, Params]:
        params = self.draw(batch, generator)
        return self.apply(batch, params), params

    def _replay(self, batch: Batch, params: Params) -> Batch:
        params = check_params(params, self.param_keys(), batch.batch_size, type(self).__name__)
        params = {k: (v.to(batch.device) if isinstance(v, torch.Tensor) else v) for k, v in params.items()}
        return self.apply(batch, params)

    def __repr__(self) -> str:
        items = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_") and k != "labels")
        return f"{type(self).__name__}({items})"


def map_images(batch: Batch, fn, keys: Sequence[str] | None = None) -> Batch:
    """Apply ``fn(tensor (B, C, *spatial), key)`` to the image keys (labels untouched)."""
    tensors = dict(batch.tensors)
    for key in batch.image_keys() if keys is None else keys:
        tensors[key] = fn(tensors[key], key)
    return batch.with_tensors(tensors)
