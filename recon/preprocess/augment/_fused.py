"""A compiled 3-D sampler that never builds the sampling grid (private; ``backend="compiled"``).

``grid_sample`` needs the whole grid ``(B, D, H, W, 3)`` in memory: on a CPU, writing and reading
it costs as much as the interpolation. Here each output voxel computes its own sampling point
(the affine part from its index, the elastic part as the B-spline sum ``sum_a basis0[d, a] *
rest[a, h, w]`` over the few control planes) and interpolates, in one loop that
``torch.compile`` (inductor) fuses and parallelises. The first call per process compiles
(seconds; inductor caches the code on disk), later calls reuse it for every shape.
"""

from __future__ import annotations

import torch

_COMPILED: dict[str, object] = {}


def _points(theta: torch.Tensor, basis0: torch.Tensor, rest: torch.Tensor, shape: tuple[int, int, int]):
    B = theta.shape[0]
    D, H, W = shape
    dt = theta.dtype
    dev = theta.device
    z = torch.linspace(-1, 1, D, dtype=dt, device=dev).view(1, D, 1, 1)
    y = torch.linspace(-1, 1, H, dtype=dt, device=dev).view(1, 1, H, 1)
    x = torch.linspace(-1, 1, W, dtype=dt, device=dev).view(1, 1, 1, W)
    th = theta.view(B, 3, 4, 1, 1, 1)
    p = [th[:, i, 0] * x + th[:, i, 1] * y + th[:, i, 2] * z + th[:, i, 3] for i in range(3)]
    for a in range(basis0.shape[1]):
        w = basis0[:, a].view(1, D, 1, 1)
        for i in range(3):
            p[i] = p[i] + w * rest[:, a, :, :, i].view(B, 1, H, W)
    # grid_sample's unnormalisation with align_corners=True
    return (p[0] + 1) * ((W - 1) / 2), (p[1] + 1) * ((H - 1) / 2), (p[2] + 1) * ((D - 1) / 2)


def _linear(image: torch.Tensor, theta: torch.Tensor, basis0: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
    B, C, D, H, W = image.shape
    ix, iy, iz = _points(theta, basis0, rest, (D, H, W))
    x0, y0, z0 = torch.floor(ix), torch.floor(iy), torch.floor(iz)
    fx, fy, fz = ix - x0, iy - y0, iz - z0
    x0, y0, z0 = x0.long(), y0.long(), z0.long()
    flat = image.reshape(B, C, D * H * W)
    out = None
    for dz in (0, 1):
        for dy in (0, 1):
            for dx in (0, 1):
                xi, yi, zi = x0 + dx, y0 + dy, z0 + dz
                valid = (xi >= 0) & (xi < W) & (yi >= 0) & (yi < H) & (zi >= 0) & (zi < D)
                idx = (zi.clamp(0, D - 1) * H + yi.clamp(0, H - 1)) * W + xi.clamp(0, W - 1)
                w = (fx if dx else 1 - fx) * (fy if dy else 1 - fy) * (fz if dz else 1 - fz)
                w = torch.where(valid, w, torch.zeros((), dtype=w.dtype, device=w.device))
                v = torch.gather(flat, 2, idx.reshape(B, 1, -1).expand(B, C, -1)).view(B, C, D, H, W)
                term = w.unsqueeze(1) * v
                out = term if out is None else out + term
    return out


def _nearest(image: torch.Tensor, theta: torch.Tensor, basis0: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
    B, C, D, H, W = image.shape
    ix, iy, iz = _points(theta, basis0, rest, (D, H, W))
    xi, yi, zi = torch.round(ix).long(), torch.round(iy).long(), torch.round(iz).long()
    valid = (xi >= 0) & (xi < W) & (yi >= 0) & (yi < H) & (zi >= 0) & (zi < D)
    idx = (zi.clamp(0, D - 1) * H + yi.clamp(0, H - 1)) * W + xi.clamp(0, W - 1)
    v = torch.gather(image.reshape(B, C, -1), 2, idx.reshape(B, 1, -1).expand(B, C, -1)).view(B, C, D, H, W)
    return torch.where(valid.unsqueeze(1), v, torch.zeros((), dtype=v.dtype, device=v.device))


def fused_sample(image: torch.Tensor, theta: torch.Tensor, basis0: torch.Tensor, rest: torch.Tensor, mode: str) -> torch.Tensor:
    """Sample ``image`` ``(B, C, D, H, W)`` at ``theta @ x + basis0 @ rest`` (zeros outside).

    Args:
        theta: ``(B, 3, 4)`` normalised (x, y, z) sampling matrix, image dtype.
        basis0: ``(D, K)`` B-spline weights along the first axis (``K = 0``: affine only).
        rest: ``(B, K, H, W, 3)`` the field contracted along the other axes.
        mode: ``"linear"`` or ``"nearest"``.
    """
    key = f"{mode}-{image.device.type}"
    fn = _COMPILED.get(key)
    if fn is None:
        fn = torch.compile(_linear if mode == "linear" else _nearest, dynamic=True)
        _COMPILED[key] = fn
    return fn(image, theta, basis0, rest)
