"""The resampling engine of the spatial transforms (private).

Composes chains of affine matrices and B-spline displacement fields into sampling points in
``grid_sample``'s normalised coordinates, builds the grid in one memory pass (per-thread CPU
workspace), and interpolates every tensor of a sample once (``grid_sample`` split into depth
slabs so that a single CPU volume uses every thread, or the compiled fused sampler).
"""

from __future__ import annotations

import math
import threading
from typing import Sequence

import torch
import torch.nn.functional as F

from recon.preprocess.augment._base import Batch

_INTERPOLATION = {"linear": "bilinear", "nearest": "nearest", "cubic": "bicubic"}
_PADDING = ("zeros", "border", "reflection")


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
    if rows > shape[0]:  # padding planes continue the axis; the real ones stay bit-identical
        step = 2.0 / max(shape[0] - 1, 1)
        extra = torch.arange(shape[0], rows, dtype=dtype, device=dev) * step - 1.0
        coords[0] = torch.cat([coords[0], extra])
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
