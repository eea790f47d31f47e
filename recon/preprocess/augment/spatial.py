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

Flips, crops and pads move no voxel value and are exact; crops and pads return the new affine
(the world position of every voxel is kept), flips, affines and elastic deformations keep the
affine (the content moves in the world, which is what augmentation is).
"""

from __future__ import annotations

import math
import threading
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F

from recon.preprocess.augment._base import (
    Batch,
    Params,
    Transform,
    as_number_list,
    check_number,
    check_positive_int,
    check_probability,
    describe,
    uniform,
)

__all__ = [
    "affine_matrix",
    "Affine",
    "RandomAffine",
    "Elastic",
    "RandomElastic",
    "Flip",
    "RandomFlip",
    "Crop",
    "CenterCrop",
    "RandomCrop",
    "Pad",
]

_INTERPOLATION = {"linear": "bilinear", "nearest": "nearest", "cubic": "bicubic"}
_PADDING = ("zeros", "border", "reflection")


def _n_rot(nd: int) -> int:
    return 3 if nd == 3 else 1


_BACKENDS = ("grid_sample", "compiled")


def _check_backend(backend: str) -> str:
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {list(_BACKENDS)}, got {backend!r}")
    return backend


def _check_interp(interpolation: str, padding_mode: str) -> tuple[str, str]:
    if interpolation not in _INTERPOLATION:
        raise ValueError(f"interpolation must be one of {sorted(_INTERPOLATION)}, got {interpolation!r}")
    if padding_mode not in _PADDING:
        raise ValueError(f"padding_mode must be one of {list(_PADDING)}, got {padding_mode!r}")
    return interpolation, padding_mode


# ------------------------------------------------------------------------------ small matrices
# The parameters are batches of 3x3/4x4 matrices. BLAS/LAPACK calls on them start worker
# threads, and on a busy machine waiting for those threads costs ~100x the arithmetic, so the
# small algebra is written with elementwise operations (which stay on the calling thread).
def _mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Batched product of small matrices ``(..., n, k) @ (..., k, m)`` without BLAS."""
    return (a.unsqueeze(-1) * b.unsqueeze(-3)).sum(-2)


def _det_small(m: torch.Tensor) -> torch.Tensor:
    """Determinant of ``(..., n, n)`` matrices, n = 2 or 3."""
    if m.shape[-1] == 2:
        return m[..., 0, 0] * m[..., 1, 1] - m[..., 0, 1] * m[..., 1, 0]
    return (m[..., 0, 0] * (m[..., 1, 1] * m[..., 2, 2] - m[..., 1, 2] * m[..., 2, 1])
            - m[..., 0, 1] * (m[..., 1, 0] * m[..., 2, 2] - m[..., 1, 2] * m[..., 2, 0])
            + m[..., 0, 2] * (m[..., 1, 0] * m[..., 2, 1] - m[..., 1, 1] * m[..., 2, 0]))


def _inv_small(m: torch.Tensor) -> torch.Tensor:
    """Inverse of ``(..., n, n)`` matrices, n = 2 or 3 (adjugate / determinant)."""
    if m.shape[-1] == 2:
        adj = torch.stack([torch.stack([m[..., 1, 1], -m[..., 0, 1]], -1),
                           torch.stack([-m[..., 1, 0], m[..., 0, 0]], -1)], -2)
        return adj / _det_small(m)[..., None, None]
    cof = []
    for i in range(3):
        row = []
        for j in range(3):
            r = [k for k in range(3) if k != i]
            c = [k for k in range(3) if k != j]
            minor = m[..., r[0], c[0]] * m[..., r[1], c[1]] - m[..., r[0], c[1]] * m[..., r[1], c[0]]
            row.append(minor if (i + j) % 2 == 0 else -minor)
        cof.append(torch.stack(row, -1))
    adj = torch.stack(cof, -2).transpose(-1, -2)
    return adj / _det_small(m)[..., None, None]


def _inv_affine(m: torch.Tensor) -> torch.Tensor:
    """Inverse of homogeneous affine matrices ``(..., n + 1, n + 1)``: ``[L^-1, -L^-1 t]``."""
    n = m.shape[-1] - 1
    out = torch.zeros_like(m)
    linv = _inv_small(m[..., :n, :n])
    out[..., :n, :n] = linv
    out[..., :n, n] = -(linv * m[..., None, :n, n]).sum(-1)
    out[..., n, n] = 1
    return out


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


def _frame(batch: Batch) -> torch.Tensor:
    """``(B, nd, nd)`` K with centred coordinates ``w = K g``, ``g`` grid_sample's normalised (x, y[, z])."""
    nd = batch.nd
    half = torch.tensor([max(n - 1, 1) / 2.0 for n in batch.spatial_shape], dtype=torch.float64, device=batch.device)
    perm = torch.flip(torch.eye(nd, dtype=torch.float64, device=batch.device), dims=[1])  # P: g (x,y,z) -> axes (0,1,2)
    k = perm * half.unsqueeze(-1)  # diag(half) @ perm
    if batch.affine is not None:
        return _mm(batch.affine[:, :nd, :nd], k)
    return k.expand(batch.batch_size, nd, nd)


def _normalised(forward: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Sampling matrix (output -> input) in normalised grid coordinates from forward matrices."""
    nd = batch.nd
    K = _frame(batch)
    B = batch.batch_size
    Kh = torch.eye(nd + 1, dtype=torch.float64, device=batch.device).repeat(B, 1, 1)
    Kh[:, :nd, :nd] = K
    return _mm(_inv_affine(Kh), _mm(_inv_affine(forward.expand(B, -1, -1)), Kh))


# ------------------------------------------------------------------------------ B-splines
def _bspline_basis(n_out: int, n_ctrl: int, dtype: torch.dtype, device: torch.device, rows: int | None = None) -> torch.Tensor:
    """``(rows, n_ctrl)`` cubic B-spline weights: control points span the axis of ``n_out`` voxels
    (mesh ``n_ctrl - 3``); ``rows > n_out`` extends the last polynomial piece (padding rows)."""
    mesh = n_ctrl - 3
    u = torch.arange(n_out if rows is None else rows, dtype=torch.float64, device=device) * (mesh / max(n_out - 1, 1))
    i = torch.floor(u).clamp(max=mesh - 1)
    t = u - i
    w = torch.stack([(1 - t) ** 3 / 6, (3 * t**3 - 6 * t**2 + 4) / 6, (-3 * t**3 + 3 * t**2 + 3 * t + 1) / 6, t**3 / 6], -1)
    basis = torch.zeros(u.shape[0], n_ctrl, dtype=torch.float64, device=device)
    cols = i.long().unsqueeze(-1) + torch.arange(4, device=device)
    basis.scatter_(1, cols, w)
    return basis.to(dtype)


def _apply_linear(vectors: torch.Tensor, lin: torch.Tensor) -> torch.Tensor:
    """``lin[b] @ v`` for every vector ``v`` of ``vectors`` ``(B, ..., nd)``; ``lin`` ``(B, nd, nd)``."""
    B, nd = vectors.shape[0], vectors.shape[-1]
    v = vectors.reshape(B, -1, 1, nd)
    return (v * lin.unsqueeze(1)).sum(-1).view(vectors.shape)


def _axis_coords(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """grid_sample's normalised voxel-centre coordinates along an axis (align_corners=True)."""
    if n == 1:
        return torch.zeros(1, dtype=dtype, device=device)
    return torch.linspace(-1, 1, n, dtype=dtype, device=device)


def _partial_field(coeffs: torch.Tensor, shape: Sequence[int], dtype: torch.dtype,
                   rows: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """B-spline field contracted along every axis but the first.

    Returns ``(basis0 (n0, c0), rest (B, c0, prod(shape[1:]) * nd))``: the dense field is
    ``basis0 @ rest`` per sample.
    """
    B, nd = coeffs.shape[0], coeffs.shape[-1]
    ctrl = coeffs.shape[1:-1]
    dev = coeffs.device
    c = coeffs.to(dtype)
    bases = [_bspline_basis(n, m, dtype, dev, rows if a == 0 else None) for a, (n, m) in enumerate(zip(shape, ctrl))]
    # broadcast matmuls rather than einsum: these are tiny, and a multi-threaded kernel on a
    # busy machine waits longer for its threads than it computes
    if nd == 3:
        flat = c.reshape(-1, 1, ctrl[2], nd)
        c = sum(bases[2][:, a].view(1, -1, 1) * flat[:, :, a] for a in range(ctrl[2]))  # (B c0 c1, n2, nd)
        c = torch.matmul(bases[1], c.reshape(B * ctrl[0], ctrl[1], -1))  # (B c0, n1, n2 nd)
    else:
        c = torch.matmul(bases[1], c.reshape(B * ctrl[0], ctrl[1], nd))  # (B c0, n1, nd)
    return bases[0], c.reshape(B, ctrl[0], -1)


def _dense_field(coeffs: torch.Tensor, shape: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    """Dense ``(B, *shape, nd)`` cubic B-spline field from control-point values ``(B, *ctrl, nd)``."""
    basis0, rest = _partial_field(coeffs, shape, dtype)
    B, nd = coeffs.shape[0], coeffs.shape[-1]
    return torch.matmul(basis0, rest).view(B, *shape, nd)


_WORKSPACE = threading.local()


def _workspace(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A per-thread buffer for the sampling grid, kept between calls (one shape at a time).

    A grid of a 181 x 217 x 181 volume is 85 MB; on a CPU, allocating it afresh each call costs
    more in page faults than computing it. (On CUDA the caching allocator already reuses memory:
    nothing is kept.)
    """
    if device.type != "cpu":
        return torch.empty(shape, dtype=dtype, device=device)
    buf = getattr(_WORKSPACE, "grid", None)
    if buf is None or buf.shape != shape or buf.dtype != dtype or buf.device != device:
        _WORKSPACE.grid = None  # free the old one first
        buf = torch.empty(shape, dtype=dtype, device=device)
        _WORKSPACE.grid = buf
    return buf


def _affine_plus_fields(theta: torch.Tensor, fields: Sequence[torch.Tensor], shape: Sequence[int],
                        dtype: torch.dtype, rows: int | None = None) -> torch.Tensor:
    """Sampling points ``theta @ x + sum(fields)`` on the regular grid, in one memory pass.

    ``theta`` ``(B, nd + 1, nd + 1)`` acts on normalised (x, y[, z]); ``fields`` are control-point
    displacements ``(B, *ctrl, nd)`` in normalised units. Along the first spatial axis the
    points are ``z_0 * theta[:, :, nd-1] + (the rest of the affine) + basis0 @ partial``: without
    fields one broadcast addition writes the grid, with fields one batched matrix product
    ``[z_0, 1, basis0] @ [col, rest-of-affine, partial]`` (no base grid, no separate addition).
    ``rows >= shape[0]`` computes that many planes along the first axis (padding for slabs).
    The result lives in a per-thread workspace: valid until the next call.
    """
    B = theta.shape[0]
    nd = len(shape)
    dev = theta.device
    rows = shape[0] if rows is None else rows
    th = theta[:, :nd].to(dtype)  # (B, nd, nd + 1), columns: x, y, [z], 1
    coords = [_axis_coords(n, dtype, dev) for n in shape]  # per tensor axis 0..nd-1
    if rows > shape[0]:
        step = 2.0 / max(shape[0] - 1, 1)
        coords[0] = torch.arange(rows, dtype=dtype, device=dev) * step - 1.0
    # the tensor axis a corresponds to normalised component nd - 1 - a
    col0 = th[:, :, nd - 1]  # (B, nd): the direction of tensor axis 0
    rest_shape = tuple(shape[1:])
    affine_rest = th[:, :, nd].view(B, *[1] * (nd - 1), nd)
    for a in range(1, nd):
        v = coords[a].view(*[1] * (a - 1), -1, *[1] * (nd - 1 - a), 1) * th[:, :, nd - 1 - a].view(B, *[1] * (nd - 1), nd)
        affine_rest = affine_rest + v
    out = _workspace((B, rows, *rest_shape, nd), dtype, dev)
    if not fields:
        first = coords[0].view(1, rows, *[1] * (nd - 1), 1) * col0.view(B, 1, *[1] * (nd - 1), nd)
        torch.add(first, affine_rest.unsqueeze(1), out=out)
        return out
    affine_rest = affine_rest.expand(B, *rest_shape, nd).reshape(B, 1, -1)
    col_rows = col0.view(B, 1, 1, nd).expand(B, 1, math.prod(rest_shape), nd).reshape(B, 1, -1)
    lefts = [coords[0].view(1, -1, 1).expand(B, -1, 1), torch.ones(B, rows, 1, dtype=dtype, device=dev)]
    rights = [col_rows, affine_rest]
    for c in fields:
        basis0, rest = _partial_field(c, shape, dtype, rows)
        lefts.append(basis0.expand(B, -1, -1))
        rights.append(rest)
    torch.bmm(torch.cat(lefts, 2), torch.cat(rights, 1), out=out.view(B, rows, -1))
    return out


# ------------------------------------------------------------------------------ resampling
def _slabs(batch: Batch) -> int:
    """How many depth slabs a CPU volume is split into so that every thread samples (1: none).

    ATen's 3-D CPU ``grid_sample`` is parallel over the batch only: a single volume would use
    one thread. The grid is computed with its depth padded to a multiple of the thread count
    and passed as a batch of slabs (the input expanded, not copied).
    """
    threads = torch.get_num_threads()
    B = batch.batch_size
    if batch.nd != 3 or batch.device.type != "cpu" or threads < 2 or B >= threads or batch.spatial_shape[0] < 2 * threads:
        return 1
    return threads


def _rows(batch: Batch, slabs: int) -> int:
    n = batch.spatial_shape[0]
    return -(-n // slabs) * slabs


def _plan(ops: Sequence[tuple[str, torch.Tensor]], batch: Batch, dtype: torch.dtype, slabs: int = 1):
    """Compose a chain of ("affine", H) / ("elastic", coeffs) ops into sampling points.

    ``ops`` are in the order the transforms are applied to the content; the sampling map is
    their composition in reverse. Returns ``(theta, fields, dense)``: either the points are
    ``theta @ x + sum of B-spline fields`` on the regular grid (``dense is None``; ``theta``
    None means the identity), or ``dense`` holds them ``(B, rows, *spatial[1:], nd)``.
    """
    nd, B, shape = batch.nd, batch.batch_size, batch.spatial_shape
    M = None  # accumulated sampling matrix (points = M x + sum of lazy fields)
    lazy: list[torch.Tensor] = []  # control-point displacements evaluated on the regular grid
    dense = None  # points, once they had to be materialised
    for kind, value in reversed(ops):
        if kind == "affine":
            if dense is not None:
                lin = value[:, :nd, :nd].to(dtype)
                dense = (dense.view(B, -1, nd) @ lin.transpose(1, 2) + value[:, None, :nd, nd].to(dtype)).view_as(dense)
            else:
                M = value if M is None else _mm(value, M)
                lazy = [_apply_linear(c, value[:, :nd, :nd]) for c in lazy]
        else:  # elastic
            if dense is None and M is None and not lazy:
                lazy = [value]
                continue
            pts = dense if dense is not None else _materialise(M, lazy, batch, dtype, slabs)
            field = _dense_field(value, shape, dtype).movedim(-1, 1)
            moved = _grid_sample(field, pts, "bilinear", "border", slabs)
            dense = pts + moved.movedim(1, -1)
            M, lazy = None, []
    return M, lazy, dense


def _materialise(M: torch.Tensor | None, lazy: Sequence[torch.Tensor], batch: Batch, dtype: torch.dtype,
                 slabs: int = 1) -> torch.Tensor:
    nd, B = batch.nd, batch.batch_size
    theta = M if M is not None else torch.eye(nd + 1, dtype=torch.float64, device=batch.device).expand(B, -1, -1)
    return _affine_plus_fields(theta, lazy, batch.spatial_shape, dtype, _rows(batch, slabs))


def _resample(batch: Batch, ops: Sequence[tuple[str, torch.Tensor]], interpolation: str, padding_mode: str,
              backend: str) -> Batch:
    """Interpolate every tensor of ``batch`` once at the composed sampling points of ``ops``."""
    if _INTERPOLATION[interpolation] == "bicubic" and batch.nd == 3:
        raise ValueError("interpolation='cubic' is provided for 2-D slices only (grid_sample has no 3-D cubic mode); "
                         "use 'linear' for volumes")
    dtype = torch.float64 if any(t.dtype == torch.float64 for t in batch.tensors.values()) else torch.float32
    if backend == "compiled" and batch.nd == 3 and padding_mode == "zeros" and interpolation in ("linear", "nearest"):
        M, lazy, dense = _plan(ops, batch, dtype)
        if dense is None and len(lazy) <= 1:
            return _sample_fused(batch, M, lazy, interpolation, dtype)
        grid = dense if dense is not None else _materialise(M, lazy, batch, dtype)
        return _sample_grid(batch, grid, interpolation, padding_mode, 1)
    slabs = _slabs(batch)
    M, lazy, dense = _plan(ops, batch, dtype, slabs)
    grid = dense if dense is not None else _materialise(M, lazy, batch, dtype, slabs)
    return _sample_grid(batch, grid, interpolation, padding_mode, slabs)


def _sample_fused(batch: Batch, M: torch.Tensor | None, lazy: Sequence[torch.Tensor], interpolation: str,
                  dtype: torch.dtype) -> Batch:
    from recon.preprocess.augment._fused import fused_sample

    B, shape = batch.batch_size, batch.spatial_shape
    theta = M if M is not None else torch.eye(4, dtype=torch.float64, device=batch.device).expand(B, -1, -1)
    if lazy:
        basis0, rest = _partial_field(lazy[0], shape, dtype)
        rest = rest.reshape(B, -1, shape[1], shape[2], 3)
    else:
        basis0 = torch.zeros(shape[0], 0, dtype=dtype, device=batch.device)
        rest = torch.zeros(B, 0, shape[1], shape[2], 3, dtype=dtype, device=batch.device)
    out = dict(batch.tensors)
    for keys, mode in ((batch.image_keys(), interpolation), (batch.label_keys(), "nearest")):
        for key in keys:
            t = batch.tensors[key]
            dt = t.dtype if t.dtype in (torch.float32, torch.float64) else dtype
            res = fused_sample(t.to(dt), theta[:, :3].to(dt), basis0.to(dt), rest.to(dt), mode)
            out[key] = res if t.dtype == dt else res.round().to(t.dtype)
    return batch.with_tensors(out)


def _grid_sample(x: torch.Tensor, grid: torch.Tensor, mode: str, padding_mode: str, slabs: int = 1) -> torch.Tensor:
    """``F.grid_sample`` (align_corners=True), with the depth of ``grid`` split into ``slabs``.

    Returns ``(B, C, rows, ...)``, ``rows = grid.shape[1]`` (a multiple of ``slabs``).
    """
    if slabs == 1:
        return F.grid_sample(x, grid, mode=mode, padding_mode=padding_mode, align_corners=True)
    B, C = x.shape[:2]
    rows, H, W = grid.shape[1:4]
    outs = []
    for b in range(B):
        g = grid[b].view(slabs, rows // slabs, H, W, 3)
        o = F.grid_sample(x[b:b + 1].expand(slabs, -1, -1, -1, -1), g, mode=mode, padding_mode=padding_mode,
                          align_corners=True)  # (slabs, C, rows / slabs, H, W)
        outs.append(o.view(1, C, rows, H, W) if C == 1 else o.transpose(0, 1).reshape(1, C, rows, H, W))
    return outs[0] if B == 1 else torch.cat(outs, 0)


def _sample_grid(batch: Batch, grid: torch.Tensor, interpolation: str, padding_mode: str, slabs: int = 1) -> Batch:
    """Interpolate every tensor of the batch at ``grid`` (points in normalised coordinates).

    One ``grid_sample`` per key (no channel concatenation: no copy of the inputs); labels with
    nearest neighbour and zero padding, cast back to their dtype.
    """
    n0 = batch.spatial_shape[0]
    out = dict(batch.tensors)
    for key, t in batch.tensors.items():
        is_label = key in batch.labels
        dt = t.dtype if t.dtype in (torch.float32, torch.float64) else torch.float32
        mode = "nearest" if is_label else _INTERPOLATION[interpolation]
        res = _grid_sample(t.to(dt), grid.to(dt), mode, "zeros" if is_label else padding_mode, slabs)
        if res.shape[2] != n0:
            res = res[:, :, :n0]
        if t.dtype != dt:
            res = res.round().to(t.dtype) if not t.dtype.is_floating_point else res.to(t.dtype)
        out[key] = res
    return batch.with_tensors(out)


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


# ------------------------------------------------------------------------------ crops and pads
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
