"""Spatial transforms: affine, elastic, flips, crops and pads; one resampling for a chain.

Coordinates
-----------
Affine and elastic transforms act in *centred coordinates*: world millimetres relative to the
world position of the image centre when the sample carries an ``"affine"`` (NIfTI/RAS+; axes are
the world axes x, y, z), otherwise voxels relative to the centre voxel ``(n - 1) / 2`` (axes are
the tensor's spatial axes ``D, H, W`` - or ``H, W`` for a slice - and voxels are taken as
isotropic). Rotations and scalings are therefore about the image centre, in mm when an affine is
given: a rotation of an anisotropic volume is a true rotation in the world.

* :class:`Affine` moves the image content by the forward matrix
  ``F = T(translation) @ R @ Sh @ S`` (``R = R_2 @ R_1 @ R_0``, ``R_k`` a right-handed rotation of
  ``rotation[k]`` degrees about axis ``k``; ``S = diag(scale)``; ``Sh`` the unit upper-triangular
  shear with entries ``shear = (s01, s02, s12)`` (3-D) or ``(s01,)`` (2-D)): the output at
  ``x`` is the input at ``F^-1 x``.
* :class:`Elastic` is a pull-back displacement field: the output at ``x`` is the input at
  ``x + u(x)``, ``u`` the cubic B-spline through a coarse grid of control-point displacements
  (``n`` control points per axis span the image as SimpleITK's ``BSplineTransformInitializer``
  with mesh size ``n - 3``, torchio's convention); the dense field is evaluated separably
  (three small matrix products), not by resampling.

Resampling uses :func:`torch.nn.functional.grid_sample` with ``align_corners=True`` (voxel
centres at the grid ends). :class:`~recon.preprocess.augment.Compose` fuses consecutive affine
and elastic transforms into one sampling grid: the 4x4 matrices are multiplied, displacement
fields are mapped through the affines that follow them (an elastic field met after another
transform is evaluated at the moved points by linear interpolation of its dense field), and each
image is interpolated once. Interpolation: ``"linear"`` (default) or ``"nearest"`` for images,
``"cubic"`` for 2-D slices only (torch's bicubic, cubic convolution with ``a = -0.75``; 3-D cubic
is not provided); labels always nearest-neighbour.

Flips (here) and crops and pads (:mod:`~recon.preprocess.augment.crop`) move no voxel value
and are exact; crops and pads return the new affine (the world position of every voxel is
kept), flips, affines and elastic deformations keep the affine (the content moves in the world,
which is what augmentation is). The resampling engine is in ``_resampling.py``.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch

from recon.preprocess.augment._base import (
    Batch,
    Params,
    Transform,
    as_number_list,
    check_positive_int,
    check_probability,
    describe,
    uniform,
)
from recon.preprocess.augment._resampling import (
    _check_backend,
    _apply_linear,
    _check_interp,
    _frame,
    _inv_small,
    _mm,
    _normalised,
    _resample,
)

__all__ = [
    "affine_matrix",
    "Affine",
    "RandomAffine",
    "Elastic",
    "RandomElastic",
    "Flip",
    "RandomFlip",
]


def _n_rot(nd: int) -> int:
    return 3 if nd == 3 else 1


# ------------------------------------------------------------------------------ matrices
def _rotation(deg: torch.Tensor, nd: int) -> torch.Tensor:
    """``(B, nd, nd)`` rotation from ``(B, 1)`` (2-D) or ``(B, 3)`` (3-D) angles in degrees."""
    rad = torch.deg2rad(deg)
    c, s = torch.cos(rad), torch.sin(rad)
    B = deg.shape[0]
    if nd == 2:
        return torch.stack([torch.stack([c[:, 0], -s[:, 0]], -1), torch.stack([s[:, 0], c[:, 0]], -1)], -2)
    one, zero = torch.ones_like(c[:, 0]), torch.zeros_like(c[:, 0])

    def mat(rows):
        return torch.stack([torch.stack(r, -1) for r in rows], -2)

    r0 = mat([[one, zero, zero], [zero, c[:, 0], -s[:, 0]], [zero, s[:, 0], c[:, 0]]])
    r1 = mat([[c[:, 1], zero, s[:, 1]], [zero, one, zero], [-s[:, 1], zero, c[:, 1]]])
    r2 = mat([[c[:, 2], -s[:, 2], zero], [s[:, 2], c[:, 2], zero], [zero, zero, one]])
    del B
    return _mm(r2, _mm(r1, r0))


def affine_matrix(rotation: torch.Tensor, scale: torch.Tensor, translation: torch.Tensor,
                  shear: torch.Tensor | None = None) -> torch.Tensor:
    """Forward matrices ``T(translation) @ R @ Sh @ S`` of a batch, homogeneous.

    Args:
        rotation: ``(B, 3)`` degrees about axes 0, 1, 2 (3-D) or ``(B, 1)`` (2-D).
        scale: ``(B, nd)`` factors.
        translation: ``(B, nd)`` mm (or voxels without an affine).
        shear: ``(B, 3)`` ``(s01, s02, s12)`` (3-D) or ``(B, 1)`` (2-D); ``None`` for none.

    Returns:
        ``(B, nd + 1, nd + 1)`` float64 matrices acting on centred coordinates.
    """
    nd = scale.shape[-1]
    B = scale.shape[0]
    dev = scale.device
    lin = _rotation(rotation.to(torch.float64), nd)
    if shear is not None:
        sh = torch.eye(nd, dtype=torch.float64, device=dev).repeat(B, 1, 1)
        pairs = [(0, 1), (0, 2), (1, 2)] if nd == 3 else [(0, 1)]
        for k, (i, j) in enumerate(pairs):
            sh[:, i, j] = shear[:, k].to(torch.float64)
        lin = _mm(lin, sh)
    lin = lin * scale.to(torch.float64).unsqueeze(-2)
    out = torch.eye(nd + 1, dtype=torch.float64, device=dev).repeat(B, 1, 1)
    out[:, :nd, :nd] = lin
    out[:, :nd, nd] = translation.to(torch.float64)
    return out



class GridTransform(Transform):
    """A transform expressible as a sampling map (affine or elastic): fusable by Compose."""

    def __init__(self, *, interpolation: str = "linear", padding_mode: str = "zeros", labels: Iterable[str] = (),
                 backend: str = "grid_sample"):
        super().__init__(labels=labels)
        self.interpolation, self.padding_mode = _check_interp(interpolation, padding_mode)
        self.backend = _check_backend(backend)

    def grid_op(self, batch: Batch, params: Params) -> tuple[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def apply(self, batch: Batch, params: Params) -> Batch:
        return _resample(batch, [self.grid_op(batch, params)], self.interpolation, self.padding_mode, self.backend)


# ------------------------------------------------------------------------------ parameter parsing
def _per_axis(name: str, value: object, n_by_nd: dict[int, int]) -> list[float]:
    values = as_number_list(name, value)
    allowed = sorted({1} | set(n_by_nd.values()))
    if len(values) not in allowed:
        raise ValueError(f"{name} must be a number or {' or '.join(map(str, allowed[1:]))} numbers, got {len(values)} values {value!r}")
    return values


def _expand(name: str, values: list[float], nd: int, n: int) -> list[float]:
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} values, which fits {'3-D' if len(values) == 3 else '2-D'} data, "
                         f"but the sample is {nd}-D (expected {n} value{'s' if n > 1 else ''})")
    return values


def _parse_range(name: str, value: object, *, kind: str) -> list[tuple[float, float]]:
    """torchio-style ranges: ``x`` -> ``(c - x, c + x)``; ``(a, b)``; or per-axis pairs.

    ``kind`` ``"symmetric"`` (centre 0, x >= 0) or ``"scale"`` (centre 1, 0 <= x < 1; pairs > 0).
    """
    values = as_number_list(name, value)
    if len(values) == 1:
        x = values[0]
        if x < 0:
            raise ValueError(f"{name} must be non-negative (the half-width of a range), got {value!r}")
        if kind == "scale":
            if x >= 1:
                raise ValueError(f"{name} as one number s gives scales in (1 - s, 1 + s) and must be in [0, 1), got {value!r}")
            return [(1 - x, 1 + x)]
        return [(-x, x)]
    if len(values) % 2 or len(values) not in (2, 6):
        raise ValueError(f"{name} must be a number, a pair (low, high) or three pairs (6 numbers), got {len(values)} values {value!r}")
    pairs = [(values[i], values[i + 1]) for i in range(0, len(values), 2)]
    for lo, hi in pairs:
        if lo > hi:
            raise ValueError(f"{name} ranges must have low <= high, got {value!r}")
        if kind == "scale" and lo <= 0:
            raise ValueError(f"{name} must be positive scale factors, got {value!r}")
    return pairs


def _range_tensors(name: str, pairs: list[tuple[float, float]], n: int, nd: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    if len(pairs) == 1:
        pairs = pairs * n
    elif len(pairs) != n:
        raise ValueError(f"{name} gives {len(pairs)} ranges but the {nd}-D sample needs {n}")
    lo = torch.tensor([p[0] for p in pairs], dtype=torch.float64, device=device)
    hi = torch.tensor([p[1] for p in pairs], dtype=torch.float64, device=device)
    return lo, hi


# ------------------------------------------------------------------------------ affine
class Affine(GridTransform):
    """Deterministic affine transform about the image centre (world centre with an affine).

    Args:
        rotation: degrees about each axis: 3 values (3-D), 1 (2-D) or one number for all axes.
        scale: factor(s) per axis (> 0); one number for all axes.
        translation: mm per axis when the sample has an ``"affine"``, else voxels.
        shear: ``(s01, s02, s12)`` (3-D) / ``(s01,)`` (2-D) shear factors; one number for all.
        matrix: alternatively the full ``(nd + 1, nd + 1)`` forward matrix in centred
            coordinates (what :meth:`inverse` returns); exclusive with the other four.
        interpolation: ``"linear"``, ``"nearest"`` or (2-D only) ``"cubic"`` for images.
        padding_mode: value outside the input: ``"zeros"``, ``"border"`` or ``"reflection"``.
        labels: keys of the sample that hold label maps (nearest-neighbour, no intensity change).

    Example:
        >>> t = Affine(rotation=(0, 0, 10), scale=1.1, translation=(0, 2, 0))
        >>> out = t(torch.rand(1, 32, 40, 36))
        >>> back = t.inverse()(out)          # undoes it (up to interpolation and the borders)
    """

    def __init__(self, rotation: float | Sequence[float] = 0.0, scale: float | Sequence[float] = 1.0,
                 translation: float | Sequence[float] = 0.0, shear: float | Sequence[float] = 0.0, *,
                 matrix: torch.Tensor | Sequence[Sequence[float]] | None = None, interpolation: str = "linear",
                 padding_mode: str = "zeros", labels: Iterable[str] = (), backend: str = "grid_sample") -> None:
        super().__init__(interpolation=interpolation, padding_mode=padding_mode, labels=labels, backend=backend)
        if matrix is not None:
            m = torch.as_tensor(matrix, dtype=torch.float64)
            if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] not in (3, 4):
                raise ValueError(f"matrix must be a (3, 3) (2-D) or (4, 4) (3-D) homogeneous matrix, got {describe(matrix)}")
            if not torch.isfinite(m).all() or abs(float(torch.linalg.det(m))) < 1e-12:
                raise ValueError("matrix must be finite and invertible")
            self.matrix: torch.Tensor | None = m
            self.rotation = self.scale = self.translation = self.shear = None
            return
        self.matrix = None
        self.rotation = _per_axis("rotation", rotation, {2: 1, 3: 3})
        self.scale = _per_axis("scale", scale, {2: 2, 3: 3})
        if min(self.scale) <= 0:
            raise ValueError(f"scale must be positive, got {scale!r}")
        self.translation = _per_axis("translation", translation, {2: 2, 3: 3})
        self.shear = _per_axis("shear", shear, {2: 1, 3: 3})

    def forward_matrix(self, nd: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """The ``(nd + 1, nd + 1)`` float64 forward matrix for ``nd``-D data."""
        if self.matrix is not None:
            if self.matrix.shape[0] != nd + 1:
                raise ValueError(f"matrix is {self.matrix.shape[0] - 1}-D but the sample is {nd}-D")
            return self.matrix.to(device)
        t = lambda name, v, n: torch.tensor([_expand(name, v, nd, n)], dtype=torch.float64, device=device)  # noqa: E731
        return affine_matrix(t("rotation", self.rotation, _n_rot(nd)), t("scale", self.scale, nd),
                             t("translation", self.translation, nd), t("shear", self.shear, _n_rot(nd)))[0]

    def inverse(self) -> "Affine":
        """The affine that undoes this one (same interpolation and labels)."""
        nd = self.matrix.shape[0] - 1 if self.matrix is not None else (3 if len(self.rotation) == 3 or len(self.scale) == 3
                                                                       or len(self.translation) == 3 else None)
        if nd is None:
            # ambiguous scalar parameters: the inverse is built per call from the forward matrix
            return _InverseAffine(self)
        return Affine(matrix=torch.linalg.inv(self.forward_matrix(nd)), interpolation=self.interpolation,
                      padding_mode=self.padding_mode, labels=self.labels, backend=self.backend)

    def param_keys(self) -> tuple[str, ...]:
        return ("matrix",)

    def draw(self, batch: Batch, generator) -> Params:
        m = self.forward_matrix(batch.nd, batch.device)
        return {"matrix": m.expand(batch.batch_size, -1, -1).clone()}

    def grid_op(self, batch: Batch, params: Params) -> tuple[str, torch.Tensor]:
        return "affine", _normalised(params["matrix"].to(batch.device, torch.float64), batch)


class _InverseAffine(Affine):
    def __init__(self, of: Affine) -> None:
        Transform.__init__(self, labels=of.labels)
        self.interpolation, self.padding_mode, self.backend = of.interpolation, of.padding_mode, of.backend
        self._of = of
        self.matrix = None

    def forward_matrix(self, nd: int, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.linalg.inv(self._of.forward_matrix(nd, device))

    def inverse(self) -> Affine:
        return self._of


class RandomAffine(GridTransform):
    """Random rotation, scaling and translation, drawn per sample from a generator.

    Ranges follow torchio: a number ``x`` means ``U(-x, x)`` for degrees and translation and
    ``U(1 - x, 1 + x)`` for scales; a pair ``(a, b)`` means ``U(a, b)`` on every axis; three
    pairs (6 numbers) give one range per axis (3-D). Defaults are torchio's
    (``scales=0.1, degrees=10, translation=0``).

    Args:
        degrees: rotation range(s) in degrees (about each axis in 3-D, the one angle in 2-D).
        scales: scale range(s); ``isotropic=True`` draws one factor for all axes.
        translation: translation range(s) in mm (voxels without an affine).
        isotropic: one scale factor for every axis.
        interpolation, padding_mode, labels: as :class:`Affine`.

    The parameters drawn are ``{"rotation": (B, 3|1), "scale": (B, nd), "translation": (B, nd)}``
    (float64); :meth:`deterministic` turns them into an :class:`Affine`, which has an
    :meth:`~Affine.inverse`.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> t = RandomAffine(degrees=10, scales=0.1, translation=5)
        >>> volume = torch.rand(1, 32, 40, 36)
        >>> out, params = t(volume, generator=g, return_params=True)
        >>> torch.equal(t.replay(volume, params), out)
        True
    """

    random = True

    def __init__(self, degrees: float | Sequence[float] = 10.0, scales: float | Sequence[float] = 0.1,
                 translation: float | Sequence[float] = 0.0, *, isotropic: bool = False, interpolation: str = "linear",
                 padding_mode: str = "zeros", labels: Iterable[str] = (), backend: str = "grid_sample") -> None:
        super().__init__(interpolation=interpolation, padding_mode=padding_mode, labels=labels, backend=backend)
        self.degrees = _parse_range("degrees", degrees, kind="symmetric")
        self.scales = _parse_range("scales", scales, kind="scale")
        self.translation = _parse_range("translation", translation, kind="symmetric")
        self.isotropic = bool(isotropic)

    def param_keys(self) -> tuple[str, ...]:
        return ("rotation", "scale", "translation")

    def draw(self, batch: Batch, generator: torch.Generator) -> Params:
        nd, B, dev = batch.nd, batch.batch_size, generator.device
        scale_n = 1 if self.isotropic else nd
        if self.isotropic and len(self.scales) > 1:
            raise ValueError("scales must be one range when isotropic=True")
        ranges = [("degrees", self.degrees, _n_rot(nd)), ("scales", self.scales, scale_n), ("translation", self.translation, nd)]
        lows, highs = zip(*(_range_tensors(n, p, k, nd, dev) for n, p, k in ranges))
        draws = uniform(generator, torch.cat(lows), torch.cat(highs), B).to(batch.device)
        rot, sc, tr = torch.split(draws, [_n_rot(nd), scale_n, nd], dim=1)
        if self.isotropic:
            sc = sc.expand(B, nd)
        return {"rotation": rot.contiguous(), "scale": sc.contiguous(), "translation": tr.contiguous()}

    def grid_op(self, batch: Batch, params: Params) -> tuple[str, torch.Tensor]:
        m = affine_matrix(params["rotation"], params["scale"], params["translation"])
        return "affine", _normalised(m, batch)

    def deterministic(self, params: Params, index: int = 0) -> Affine:
        """The :class:`Affine` that sample ``index`` of a call received."""
        return Affine(rotation=params["rotation"][index].tolist(), scale=params["scale"][index].tolist(),
                      translation=params["translation"][index].tolist(), interpolation=self.interpolation,
                      padding_mode=self.padding_mode, labels=self.labels, backend=self.backend)


# ------------------------------------------------------------------------------ elastic
class Elastic(GridTransform):
    """Deterministic elastic deformation from control-point displacements.

    Args:
        displacement: ``(*num_control_points, nd)`` displacement vectors (mm with an affine,
            else voxels; components along the world/tensor axes 0, 1[, 2]) on a coarse grid with
            at least 4 points per axis, or ``(B, *num_control_points, nd)`` one field per sample.
            The output at ``x`` is the input at ``x + u(x)``, ``u`` the cubic B-spline through
            the control points.
        interpolation, padding_mode, labels: as :class:`Affine`.
    """

    def __init__(self, displacement: torch.Tensor, *, interpolation: str = "linear", padding_mode: str = "zeros",
                 labels: Iterable[str] = (), backend: str = "grid_sample") -> None:
        super().__init__(interpolation=interpolation, padding_mode=padding_mode, labels=labels, backend=backend)
        if not isinstance(displacement, torch.Tensor):
            raise TypeError(f"displacement must be a tensor (*num_control_points, nd), got {describe(displacement)}")
        d = displacement.detach().to(torch.float64)
        nd = d.shape[-1] if d.ndim else 0
        if nd not in (2, 3) or d.ndim not in (nd + 1, nd + 2) or min(d.shape[-nd - 1:-1]) < 4:
            raise ValueError(
                "displacement must be (*num_control_points, nd) with nd = 2 or 3 and at least 4 control points "
                f"per axis (optionally with a leading batch dimension), got shape {tuple(displacement.shape)}"
            )
        self.displacement = d

    def param_keys(self) -> tuple[str, ...]:
        return ("displacement",)

    def draw(self, batch: Batch, generator) -> Params:
        d = self.displacement.to(batch.device)
        nd = d.shape[-1]
        if nd != batch.nd:
            raise ValueError(f"displacement is for {nd}-D data but the sample is {batch.nd}-D")
        if d.ndim == nd + 2:
            if d.shape[0] != batch.batch_size:
                raise ValueError(f"displacement has {d.shape[0]} fields but the batch has {batch.batch_size} samples")
            return {"displacement": d.clone()}
        return {"displacement": d.expand(batch.batch_size, *d.shape).clone()}

    def grid_op(self, batch: Batch, params: Params) -> tuple[str, torch.Tensor]:
        d = params["displacement"].to(batch.device, torch.float64)
        if d.shape[-1] != batch.nd or d.ndim != batch.nd + 2:
            raise ValueError(f"displacement of shape {tuple(d.shape)} does not fit {batch.nd}-D data")
        kinv = _inv_small(_frame(batch))  # centred coordinates -> normalised (x, y, z)
        return "elastic", _apply_linear(d, kinv)


class RandomElastic(GridTransform):
    """Random elastic deformation: control-point displacements ``U(-max, max)`` per component.

    torchio's ``RandomElasticDeformation`` with the same defaults (7 control points per axis,
    7.5 mm, 2 locked borders). torchio zeroes the borders along the first two axes only; here
    ``locked_borders`` outer layers are zero along every axis.

    Args:
        num_control_points: points per axis (>= 4; >= 5 with ``locked_borders=2``).
        max_displacement: mm per axis (voxels without an affine), >= 0.
        locked_borders: 0, 1 or 2 outer layers of control points with zero displacement.
        interpolation, padding_mode, labels: as :class:`Affine`.

    Parameters drawn: ``{"displacement": (B, *num_control_points, nd)}``.
    """

    random = True

    def __init__(self, num_control_points: int | Sequence[int] = 7, max_displacement: float | Sequence[float] = 7.5,
                 locked_borders: int = 2, *, interpolation: str = "linear", padding_mode: str = "zeros",
                 labels: Iterable[str] = (), backend: str = "grid_sample") -> None:
        super().__init__(interpolation=interpolation, padding_mode=padding_mode, labels=labels, backend=backend)
        ncp = [num_control_points] if isinstance(num_control_points, int) else list(num_control_points)
        if len(ncp) not in (1, 2, 3):
            raise ValueError(f"num_control_points must be an int or one per axis, got {num_control_points!r}")
        self.num_control_points = [check_positive_int("num_control_points", n, minimum=4) for n in ncp]
        self.max_displacement = _per_axis("max_displacement", max_displacement, {2: 2, 3: 3})
        if min(self.max_displacement) < 0:
            raise ValueError(f"max_displacement must be non-negative, got {max_displacement!r}")
        if locked_borders not in (0, 1, 2):
            raise ValueError(f"locked_borders must be 0, 1 or 2, got {locked_borders!r}")
        if locked_borders == 2 and min(self.num_control_points) < 5:
            raise ValueError("num_control_points must be >= 5 with locked_borders=2 (else every point is locked)")
        self.locked_borders = locked_borders

    def param_keys(self) -> tuple[str, ...]:
        return ("displacement",)

    def draw(self, batch: Batch, generator: torch.Generator) -> Params:
        nd, B = batch.nd, batch.batch_size
        ncp = _expand("num_control_points", [float(n) for n in self.num_control_points], nd, nd)
        ncp = [int(n) for n in ncp]
        maxd = torch.tensor(_expand("max_displacement", self.max_displacement, nd, nd), dtype=torch.float64,
                            device=generator.device)
        u = torch.rand((B, *ncp, nd), generator=generator, device=generator.device, dtype=torch.float64)
        d = (u * 2 - 1) * maxd
        for i in range(self.locked_borders):
            for axis in range(nd):
                d.select(axis + 1, i).zero_()
                d.select(axis + 1, ncp[axis] - 1 - i).zero_()
        return {"displacement": d.to(batch.device)}

    grid_op = Elastic.grid_op


# ------------------------------------------------------------------------------ flips
def _axes(name: str, axes: object) -> tuple[int, ...]:
    if isinstance(axes, int) and not isinstance(axes, bool):
        axes = (axes,)
    if not isinstance(axes, (list, tuple)) or not all(isinstance(a, int) and not isinstance(a, bool) for a in axes) or not axes:
        raise TypeError(f"{name} must be an int or a non-empty sequence of spatial axis indices, got {describe(axes)}")
    if any(a < -3 or a > 2 for a in axes):
        raise ValueError(f"{name} must index spatial axes (0..2, or -1..-3), got {axes!r}")
    return tuple(axes)


def _resolve_axes(name: str, axes: tuple[int, ...], nd: int) -> list[int]:
    out = []
    for a in axes:
        if not -nd <= a < nd:
            raise ValueError(f"{name} {axes!r} does not fit a {nd}-D sample (spatial axes 0..{nd - 1})")
        out.append(a % nd)
    return sorted(set(out))


class Flip(Transform):
    """Reverse the order of voxels along spatial ``axes`` (exact; the affine is kept).

    Args:
        axes: spatial axis index or indices (0 = first spatial axis; negative counts from the last).
        labels: label keys (flipped like the images).
    """

    def __init__(self, axes: int | Sequence[int], *, labels: Iterable[str] = ()) -> None:
        super().__init__(labels=labels)
        self.axes = _axes("axes", axes)

    def param_keys(self) -> tuple[str, ...]:
        return ("flip",)

    def draw(self, batch: Batch, generator) -> Params:
        flags = torch.zeros(batch.batch_size, batch.nd, dtype=torch.bool, device=batch.device)
        flags[:, _resolve_axes("axes", self.axes, batch.nd)] = True
        return {"flip": flags}

    def apply(self, batch: Batch, params: Params) -> Batch:
        flags = params["flip"].to(batch.device)
        if flags.shape[1] != batch.nd:
            raise ValueError(f"params['flip'] must be (B, {batch.nd}), got {describe(flags)}")
        out = {}
        cpu = batch.device.type == "cpu"
        for key, t in batch.tensors.items():
            for axis in range(batch.nd):
                col = flags[:, axis]
                if cpu:
                    if bool(col.all()):
                        t = t.flip(axis + 2)
                    elif bool(col.any()):
                        t = torch.where(col.view(-1, *[1] * (t.ndim - 1)), t.flip(axis + 2), t)
                else:
                    t = torch.where(col.view(-1, *[1] * (t.ndim - 1)), t.flip(axis + 2), t)
            out[key] = t
        return batch.with_tensors(out)


class RandomFlip(Flip):
    """Flip each of ``axes`` independently with probability ``p`` (per sample).

    Args:
        axes: spatial axes that may be flipped (default the first).
        p: probability of a flip per axis, in [0, 1].
    """

    random = True

    def __init__(self, axes: int | Sequence[int] = 0, p: float = 0.5, *, labels: Iterable[str] = ()) -> None:
        super().__init__(axes, labels=labels)
        self.p = check_probability("p", p)

    def draw(self, batch: Batch, generator: torch.Generator) -> Params:
        allowed = torch.zeros(batch.nd, dtype=torch.bool, device=batch.device)
        allowed[_resolve_axes("axes", self.axes, batch.nd)] = True
        u = torch.rand((batch.batch_size, batch.nd), generator=generator, device=generator.device, dtype=torch.float64)
        return {"flip": (u.to(batch.device) < self.p) & allowed}
