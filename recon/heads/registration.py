"""Learned deformable registration (VoxelMorph, Balakrishnan et al. 2019), 2-D and 3-D.

* :class:`RegistrationNet` - a U-Net that maps a ``(fixed, moving)`` pair, stacked as two
  channels, to a dense displacement field ``u`` (voxel units, one channel per spatial axis),
  so that ``warped(x) = moving(x + u(x))``. With ``integration_steps > 0`` the network
  predicts a stationary velocity field ``v`` instead and ``u = exp(v)`` is obtained by
  scaling and squaring (:func:`integrate_velocity`; VoxelMorph-diff, Dalca et al. 2019),
  which gives a diffeomorphism (positive Jacobian determinant) for smooth ``v``.
* :func:`warp` / :class:`SpatialTransformer` - the spatial transformer: linear
  (``grid_sample``) resampling of images, nearest neighbour for label maps.
* Losses: :func:`local_ncc` (windowed normalised cross-correlation), :func:`mse`,
  :func:`gradient_loss` (smoothness, squared forward differences of ``u``),
  :func:`dice_loss` (soft Dice of warped one-hot labels, the semi-supervised variant).
* :func:`jacobian_determinant`, :func:`resize_displacement` (a field on another grid).
* :func:`refine_displacement` - instance-specific optimisation (Balakrishnan et al. 2019,
  section IV-E): a few Adam steps on the pair's own loss starting from the network's field;
  :func:`refine_transform` runs it coarse to fine in world space (working grid, then 2 mm).

Conventions: images ``(B, C, *spatial)`` with 2 or 3 spatial axes (``(B, C, H, W)``,
``(B, C, D, H, W)``); displacements ``(B, ndim, *spatial)`` where channel ``k`` is the shift,
in voxels, along spatial axis ``k`` (the same order as the array axes, not ``grid_sample``'s
reversed ``x, y, z``). Samples outside the image take the border value.

The one call :func:`recon.register` (``method="learned"``) adds the affine pre-alignment, the
working grid and the bundled weights; see ``docs/registration.md``.

Example:
    >>> import torch
    >>> from recon.heads.registration import RegistrationNet
    >>> net = RegistrationNet(ndim=3, enc_chans=(4, 8), dec_chans=(8, 8, 4), integration_steps=5)
    >>> fixed, moving = torch.rand(1, 1, 16, 20, 18), torch.rand(1, 1, 16, 20, 18)
    >>> warped, displacement = net(fixed, moving)
    >>> warped.shape, displacement.shape
    (torch.Size([1, 1, 16, 20, 18]), torch.Size([1, 3, 16, 20, 18]))
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recon.heads._checks import check_finite, check_image_tensor
from recon.ops._checks import check_int, check_number, describe

__all__ = [
    "RegistrationNet",
    "SpatialTransformer",
    "warp",
    "integrate_velocity",
    "resize_displacement",
    "local_ncc",
    "mse",
    "gradient_loss",
    "dice_loss",
    "jacobian_determinant",
    "DeformableTransform",
    "WORK_VOXEL_SIZE",
    "normalise_intensity",
    "prealign",
    "resample_to_grid",
    "register_with_network",
    "refine_displacement",
    "carry_displacement",
    "refine_transform",
    "REFINE_LEVELS",
    "REFINE_SETTINGS",
    "refine_levels",
]


# ----------------------------------------------------------------------------- spatial transformer

def _check_field(name: str, field: object, image: torch.Tensor | None = None) -> torch.Tensor:
    if not isinstance(field, torch.Tensor) or not field.is_floating_point():
        raise TypeError(f"{name} must be a floating-point torch.Tensor (B, ndim, *spatial), got {describe(field)}")
    if field.ndim not in (4, 5) or field.shape[1] != field.ndim - 2:
        raise ValueError(f"{name} must be (B, 2, H, W) or (B, 3, D, H, W) (one channel per spatial axis), "
                         f"got shape {tuple(field.shape)}")
    if image is not None and (image.ndim != field.ndim or image.shape[2:] != field.shape[2:]
                              or image.shape[0] not in (1, field.shape[0])):
        raise ValueError(f"{name} of shape {tuple(field.shape)} does not match image of shape {tuple(image.shape)} "
                         "(same batch and spatial size expected)")
    return field


def _sampling_grid(displacement: torch.Tensor) -> torch.Tensor:
    """Voxel displacement ``(B, n, *S)`` -> ``grid_sample`` grid ``(B, *S, n)`` in [-1, 1] (x, y[, z])."""
    spatial = displacement.shape[2:]
    axes = [torch.arange(s, dtype=displacement.dtype, device=displacement.device) for s in spatial]
    identity = torch.stack(torch.meshgrid(*axes, indexing="ij"))  # (n, *S)
    location = identity[None] + displacement
    scale = torch.tensor([2.0 / max(s - 1, 1) for s in spatial], dtype=displacement.dtype,
                         device=displacement.device).view(1, -1, *([1] * len(spatial)))
    grid = location * scale - 1.0
    return grid.movedim(1, -1).flip(-1)  # grid_sample wants the last axis first


def warp(image: torch.Tensor, displacement: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Resample ``image`` at ``x + displacement(x)`` (the VoxelMorph spatial transformer).

    ``out[b, c, x] = image[b, c, x + u[b, :, x]]`` with linear interpolation (``"bilinear"``,
    trilinear in 3-D) or nearest neighbour (``"nearest"``: label maps; values kept exactly for
    integer-valued float input). Points outside take the nearest border value.

    Args:
        image: ``(B, C, H, W)`` or ``(B, C, D, H, W)`` floating tensor (a batch of 1 is broadcast).
        displacement: ``(B, ndim, *spatial)`` voxel displacements, channel ``k`` along axis ``k``.
        mode: ``"bilinear"`` or ``"nearest"``.

    Returns:
        Tensor of ``image``'s channels on ``displacement``'s batch and grid.

    Raises:
        ValueError: shapes that do not match, unknown ``mode``.

    Example:
        >>> img = torch.arange(5.0).view(1, 1, 1, 5)
        >>> warp(img, torch.ones(1, 2, 1, 5) * torch.tensor([0.0, 1.0]).view(1, 2, 1, 1))
        tensor([[[[1., 2., 3., 4., 4.]]]])
    """
    check_image_tensor("image", image, image.ndim if isinstance(image, torch.Tensor) and image.ndim in (4, 5) else 5,
                       "(B, C, H, W) or (B, C, D, H, W)")
    _check_field("displacement", displacement, image)
    if mode not in ("bilinear", "nearest"):
        raise ValueError(f"mode must be 'bilinear' or 'nearest', got {mode!r}")
    grid = _sampling_grid(displacement.to(image.dtype))
    if image.shape[0] != grid.shape[0]:
        image = image.expand(grid.shape[0], *image.shape[1:])
    return F.grid_sample(image, grid, mode=mode, padding_mode="border", align_corners=True)


class SpatialTransformer(nn.Module):
    """:func:`warp` as a module (no parameters).

    Args:
        mode: ``"bilinear"`` (images) or ``"nearest"`` (labels).
    """

    def __init__(self, mode: str = "bilinear") -> None:
        super().__init__()
        if mode not in ("bilinear", "nearest"):
            raise ValueError(f"mode must be 'bilinear' or 'nearest', got {mode!r}")
        self.mode = mode

    def forward(self, image: torch.Tensor, displacement: torch.Tensor) -> torch.Tensor:
        """``(B, C, *S)``, ``(B, ndim, *S)`` -> ``(B, C, *S)``."""
        return warp(image, displacement, self.mode)


def integrate_velocity(velocity: torch.Tensor, steps: int = 7) -> torch.Tensor:
    """Displacement of the flow of a stationary velocity field, by scaling and squaring.

    ``u_0 = v / 2^steps``, then ``steps`` times ``u <- u + u o (id + u)`` (composition of the
    map with itself), so ``id + u = exp(v)`` (Arsigny et al. 2006; VoxelMorph-diff).

    Args:
        velocity: ``(B, ndim, *spatial)`` voxel units.
        steps: squarings, >= 0 (0 returns ``velocity``).

    Returns:
        Displacement of ``velocity``'s shape.

    Example:
        >>> v = torch.full((1, 2, 8, 8), 0.5)
        >>> bool(torch.allclose(integrate_velocity(v, 4), v))   # a constant field is a translation
        True
    """
    _check_field("velocity", velocity)
    check_int("steps", steps, minimum=0)
    disp = velocity / (2 ** steps)
    for _ in range(steps):
        disp = disp + warp(disp, disp)
    return disp


def resize_displacement(displacement: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """A displacement field on a grid of another size covering the same extent.

    The field is interpolated linearly (``align_corners=True``: the first and last voxel
    centres coincide) and each component scaled by ``(new - 1) / (old - 1)`` of its axis, so a
    field in old-voxel units becomes one in new-voxel units.

    Args:
        displacement: ``(B, ndim, *spatial)``.
        shape: the new spatial shape (``ndim`` ints).

    Returns:
        ``(B, ndim, *shape)``.
    """
    _check_field("displacement", displacement)
    shape = tuple(int(s) for s in shape)
    old = displacement.shape[2:]
    if len(shape) != len(old) or min(shape) < 1:
        raise ValueError(f"shape must be {len(old)} positive ints, got {shape!r}")
    if shape == tuple(old):
        return displacement
    mode = "trilinear" if len(shape) == 3 else "bilinear"
    out = F.interpolate(displacement, size=shape, mode=mode, align_corners=True)
    factor = torch.tensor([(n - 1) / max(o - 1, 1) for n, o in zip(shape, old)], dtype=out.dtype, device=out.device)
    return out * factor.view(1, -1, *([1] * len(shape)))


# ----------------------------------------------------------------------------- losses

def _box(x: torch.Tensor, window: int) -> torch.Tensor:
    """Sum over a ``window``-wide box around every voxel (zero padding), separable.

    Each axis by a cumulative sum and one difference (``O(1)`` per voxel whatever the window;
    about 4x faster on a CPU than a box convolution, forward and backward, at the same float32
    rounding level).
    """
    ndim = x.ndim - 2
    pad = window // 2
    for axis in range(2, x.ndim):
        padding = [0, 0] * ndim
        k = 2 * (x.ndim - 1 - axis)  # F.pad lists the last axis first
        padding[k], padding[k + 1] = pad + 1, pad
        c = F.pad(x, padding).cumsum(axis)
        n = x.shape[axis]
        x = c.narrow(axis, window, n) - c.narrow(axis, 0, n)
    return x


def local_ncc(fixed: torch.Tensor, warped: torch.Tensor, window: int = 9, eps: float = 1e-5) -> torch.Tensor:
    """Mean local normalised cross-correlation (squared, VoxelMorph's ``NCC``), in [0, 1].

    For every voxel, over the ``window``-wide box around it (``window`` per axis, odd):
    ``cc = cov(f, w)^2 / (var(f) var(w) + eps)`` with box sums; the mean over voxels and batch
    is returned. Identical images give 1 wherever they vary; the loss is ``-local_ncc``.

    Args:
        fixed, warped: ``(B, 1, *spatial)`` (2 or 3 spatial axes), same shape.
        window: box side, odd, >= 3.
        eps: stabiliser of the denominator (in squared intensity units).

    Returns:
        Scalar tensor.
    """
    check_image_tensor("fixed", fixed, fixed.ndim if isinstance(fixed, torch.Tensor) and fixed.ndim in (4, 5) else 5,
                       "(B, 1, *spatial)")
    if not isinstance(warped, torch.Tensor) or warped.shape != fixed.shape:
        raise ValueError(f"warped must have fixed's shape {tuple(fixed.shape)}, got {describe(warped)}")
    check_int("window", window, minimum=3)
    if window % 2 == 0:
        raise ValueError(f"window must be odd, got {window}")
    n = float(window ** (fixed.ndim - 2))
    stacked = torch.cat([fixed, warped, fixed * fixed, warped * warped, fixed * warped], 1)
    sums = _box(stacked, window)
    c = fixed.shape[1]
    f_sum, w_sum, ff, ww, fw = (sums[:, i * c:(i + 1) * c] for i in range(5))
    cross = fw - f_sum * w_sum / n
    f_var = ff - f_sum * f_sum / n
    w_var = ww - w_sum * w_sum / n
    cc = cross * cross / (f_var * w_var + eps)
    return cc.mean()


def mse(fixed: torch.Tensor, warped: torch.Tensor) -> torch.Tensor:
    """Mean squared intensity difference (same-contrast similarity; the loss itself)."""
    if not isinstance(warped, torch.Tensor) or not isinstance(fixed, torch.Tensor) or warped.shape != fixed.shape:
        raise ValueError(f"fixed and warped must be tensors of one shape, got {describe(fixed)} and {describe(warped)}")
    return (fixed - warped).square().mean()


def gradient_loss(displacement: torch.Tensor) -> torch.Tensor:
    """Smoothness: the mean over axes of the mean squared forward difference of ``u``.

    ``(1/n) sum_k mean((u[x + e_k] - u[x])^2)`` (VoxelMorph's ``Grad('l2')``).
    """
    _check_field("displacement", displacement)
    ndim = displacement.ndim - 2
    total = displacement.new_zeros(())
    for axis in range(2, displacement.ndim):
        total = total + torch.diff(displacement, dim=axis).square().mean()
    return total / ndim


def dice_loss(fixed_labels: torch.Tensor, warped_labels: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``1 - mean_c soft Dice`` of one-hot (or probability) label maps ``(B, C, *spatial)``.

    ``Dice_c = 2 sum(f_c w_c) / (sum f_c + sum w_c)`` per batch item and class, averaged.
    """
    if not isinstance(fixed_labels, torch.Tensor) or not isinstance(warped_labels, torch.Tensor) \
            or fixed_labels.shape != warped_labels.shape or fixed_labels.ndim not in (4, 5):
        raise ValueError(f"fixed_labels and warped_labels must be (B, C, *spatial) tensors of one shape, got "
                         f"{describe(fixed_labels)} and {describe(warped_labels)}")
    dims = tuple(range(2, fixed_labels.ndim))
    inter = (fixed_labels * warped_labels).sum(dims)
    total = fixed_labels.sum(dims) + warped_labels.sum(dims)
    return 1.0 - ((2 * inter + eps) / (total + eps)).mean()


def jacobian_determinant(displacement: torch.Tensor) -> torch.Tensor:
    """Determinant of the Jacobian of ``x -> x + u(x)`` at every voxel (central differences).

    Args:
        displacement: ``(B, ndim, *spatial)``.

    Returns:
        ``(B, *spatial)``; values <= 0 mark folding.
    """
    _check_field("displacement", displacement)
    ndim = displacement.ndim - 2
    # grads[i][j] = d u_i / d x_j
    grads = [torch.gradient(displacement[:, i], dim=tuple(range(1, ndim + 1))) for i in range(ndim)]
    jac = [[grads[i][j] + (1.0 if i == j else 0.0) for j in range(ndim)] for i in range(ndim)]
    if ndim == 2:
        return jac[0][0] * jac[1][1] - jac[0][1] * jac[1][0]
    return (jac[0][0] * (jac[1][1] * jac[2][2] - jac[1][2] * jac[2][1])
            - jac[0][1] * (jac[1][0] * jac[2][2] - jac[1][2] * jac[2][0])
            + jac[0][2] * (jac[1][0] * jac[2][1] - jac[1][1] * jac[2][0]))


def refine_displacement(fixed: torch.Tensor, moving: torch.Tensor, displacement: torch.Tensor, steps: int, *,
                        lr: float = 0.1, lambda_smooth: float = 3.0, window: int = 9) -> torch.Tensor:
    """Instance-specific optimisation of a displacement for one pair (VoxelMorph, section IV-E).

    Starting from ``displacement`` (the network's prediction, or zeros), ``steps`` Adam steps
    (learning rate ``lr``, in voxels) minimise the training loss of this one pair,
    ``-local_ncc(fixed, warp(moving, u), window) + lambda_smooth * gradient_loss(u)``, over the
    field ``u`` itself (no network). The network gives a good start; the few steps fit what it
    missed, at a fraction of the cost of an iterative registration from scratch.

    Args:
        fixed, moving: ``(1, 1, *spatial)`` images (2 or 3 spatial axes) on one grid.
        displacement: ``(1, ndim, *spatial)`` start (voxel units of that grid).
        steps: Adam steps, an int >= 0 (0 returns a copy of ``displacement``).
        lr: Adam learning rate (voxels per step), > 0.
        lambda_smooth: weight of :func:`gradient_loss`, >= 0.
        window: local NCC window (odd, >= 3).

    Returns:
        The refined displacement (a new tensor, no gradient), ``displacement``'s shape and dtype.

    Raises:
        TypeError: ``steps`` not an int, a setting that is not a number.
        ValueError: ``steps`` < 0, ``lr`` <= 0, ``lambda_smooth`` < 0, shapes that do not match.

    Example:
        >>> f = torch.rand(1, 1, 24, 24); m = torch.roll(f, 1, dims=2)
        >>> u = refine_displacement(f, m, torch.zeros(1, 2, 24, 24), 20)
        >>> u.shape
        torch.Size([1, 2, 24, 24])
    """
    steps = check_int("steps", steps, minimum=0)
    lr = check_number("lr", lr, low=0.0, strict=True)
    lambda_smooth = check_number("lambda_smooth", lambda_smooth, low=0.0)
    check_int("window", window, minimum=3)
    _check_field("displacement", displacement)
    for name, image in (("fixed", fixed), ("moving", moving)):
        if not isinstance(image, torch.Tensor) or image.shape != (displacement.shape[0], 1, *displacement.shape[2:]):
            raise ValueError(f"{name} must be a single-channel image of shape "
                             f"{(displacement.shape[0], 1, *displacement.shape[2:])} (displacement's grid), "
                             f"got {describe(image)}")
    u = displacement.detach().clone()
    if steps == 0:
        return u
    fixed, moving = fixed.detach().to(u.dtype), moving.detach().to(u.dtype)
    u.requires_grad_(True)
    optimiser = torch.optim.Adam([u], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            optimiser.zero_grad(set_to_none=True)
            loss = -local_ncc(fixed, warp(moving, u), window) + lambda_smooth * gradient_loss(u)
            loss.backward()
            optimiser.step()
    return u.detach()


# ----------------------------------------------------------------------------- network

class _ConvBlock(nn.Module):
    """``conv3 (stride s) -> LeakyReLU(0.2)``."""

    def __init__(self, ndim: int, in_chans: int, out_chans: int, stride: int = 1) -> None:
        super().__init__()
        conv = nn.Conv3d if ndim == 3 else nn.Conv2d
        self.conv = conv(in_chans, out_chans, 3, stride=stride, padding=1)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class RegistrationNet(nn.Module):
    """VoxelMorph U-Net: ``(fixed, moving)`` -> ``(warped moving, displacement)``.

    Encoder: one stride-2 ``conv3 + LeakyReLU`` per entry of ``enc_chans`` (the first sees the
    two stacked images); decoder: for each of the first ``len(enc_chans)`` entries of
    ``dec_chans`` a ``conv3 + LeakyReLU``, nearest-neighbour upsampling x2 and concatenation
    with the encoder feature (or the input) of that scale; the remaining ``dec_chans`` are
    full-resolution convolutions; a last ``conv3`` (weights ~ N(0, 1e-5), bias 0: the
    identity at initialisation) gives the field. VoxelMorph-1 is ``enc_chans=(16, 32, 32, 32)``,
    ``dec_chans=(32, 32, 32, 32, 8, 8)``.

    With ``integration_steps > 0`` the field is a velocity, integrated at ``1/int_downsize``
    of the resolution (:func:`integrate_velocity`) and resized back: the displacement is then
    diffeomorphic. Inputs of any size are padded (edge values) to a multiple of
    ``2 ** len(enc_chans)`` and the field cropped back.

    Args:
        ndim: 2 (slices ``(B, 1, H, W)``) or 3 (volumes ``(B, 1, D, H, W)``).
        enc_chans: encoder channels (one entry per halving).
        dec_chans: decoder channels, at least ``len(enc_chans)`` entries.
        integration_steps: scaling-and-squaring steps (0: the network predicts ``u`` directly).
        int_downsize: integer factor >= 1 of the integration grid (1: full resolution).

    Raises:
        ValueError: bad arguments; (in ``forward``) inputs of the wrong rank, channels, shapes,
            NaN/Inf.

    Example:
        >>> net = RegistrationNet(ndim=2, enc_chans=(8, 8), dec_chans=(8, 8, 8))
        >>> warped, u = net(torch.rand(2, 1, 30, 33), torch.rand(2, 1, 30, 33))
        >>> u.shape
        torch.Size([2, 2, 30, 33])
    """

    def __init__(self, ndim: int = 3, enc_chans: Sequence[int] = (16, 32, 32, 32),
                 dec_chans: Sequence[int] = (32, 32, 32, 32, 8, 8), integration_steps: int = 7,
                 int_downsize: int = 2) -> None:
        super().__init__()
        if ndim not in (2, 3) or isinstance(ndim, bool):
            raise ValueError(f"ndim must be 2 or 3, got {ndim!r}")
        enc_chans, dec_chans = [int(c) for c in enc_chans], [int(c) for c in dec_chans]
        if not enc_chans or min(enc_chans + dec_chans or [0]) < 1:
            raise ValueError(f"enc_chans must be a non-empty list of positive ints, got {enc_chans!r}")
        if len(dec_chans) < len(enc_chans):
            raise ValueError(f"dec_chans must have at least len(enc_chans) = {len(enc_chans)} entries, "
                             f"got {dec_chans!r}")
        check_int("integration_steps", integration_steps, minimum=0)
        check_int("int_downsize", int_downsize)
        self.ndim, self.enc_chans, self.dec_chans = ndim, tuple(enc_chans), tuple(dec_chans)
        self.integration_steps, self.int_downsize = integration_steps, int_downsize
        self.encoder = nn.ModuleList()
        prev, skips = 2, [2]
        for c in enc_chans:
            self.encoder.append(_ConvBlock(ndim, prev, c, stride=2))
            prev = c
            skips.append(c)
        skips.pop()  # the deepest feature is the decoder's input, not a skip
        self.decoder = nn.ModuleList()
        for i, c in enumerate(dec_chans[: len(enc_chans)]):
            self.decoder.append(_ConvBlock(ndim, prev, c))
            prev = c + skips[-1 - i]
        self.remaining = nn.ModuleList()
        for c in dec_chans[len(enc_chans):]:
            self.remaining.append(_ConvBlock(ndim, prev, c))
            prev = c
        conv = nn.Conv3d if ndim == 3 else nn.Conv2d
        self.flow = conv(prev, ndim, 3, padding=1)
        nn.init.normal_(self.flow.weight, 0.0, 1e-5)
        nn.init.zeros_(self.flow.bias)

    @property
    def multiple(self) -> int:
        """Inputs are padded to a multiple of this size per axis."""
        return 2 ** len(self.enc_chans) * (self.int_downsize if self.integration_steps else 1)

    def field(self, fixed: torch.Tensor, moving: torch.Tensor) -> torch.Tensor:
        """The displacement ``(B, ndim, *spatial)`` that warps ``moving`` onto ``fixed``."""
        layout = "(B, 1, H, W)" if self.ndim == 2 else "(B, 1, D, H, W)"
        check_image_tensor("fixed", fixed, self.ndim + 2, layout)
        check_image_tensor("moving", moving, self.ndim + 2, layout)
        if fixed.shape[1] != 1 or moving.shape != fixed.shape:
            raise ValueError(f"fixed and moving must be single-channel {layout} of one shape, got "
                             f"{tuple(fixed.shape)} and {tuple(moving.shape)}")
        check_finite("fixed", fixed)
        check_finite("moving", moving)
        spatial = fixed.shape[2:]
        m = self.multiple
        pad = []
        for s in reversed(spatial):
            pad += [0, (-s) % m]
        x = torch.cat([moving, fixed], 1)
        if any(pad):
            x = F.pad(x, pad, mode="replicate")
        features = [x]
        for block in self.encoder:
            x = block(x)
            features.append(x)
        features.pop()
        for block in self.decoder:
            x = block(x)
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = torch.cat([x, features.pop()], 1)
        for block in self.remaining:
            x = block(x)
        field = self.flow(x)
        if self.integration_steps:
            size = field.shape[2:]
            if self.int_downsize > 1:
                small = [s // self.int_downsize for s in size]
                field = resize_displacement(field, small)
            field = integrate_velocity(field, self.integration_steps)
            field = resize_displacement(field, size)
        return field[(slice(None), slice(None), *[slice(0, s) for s in spatial])]

    def forward(self, fixed: torch.Tensor, moving: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, 1, *S)`` fixed and moving -> ``(warped moving, displacement (B, ndim, *S))``."""
        field = self.field(fixed, moving)
        return warp(moving, field), field


# ----------------------------------------------------------------------------- volumes in world space

#: voxel size (mm) of the grid the bundled network works on
WORK_VOXEL_SIZE = 4.0

#: settings of the fast affine pre-alignment (:func:`prealign`) on the working grid
PREALIGN_SETTINGS = dict(shrink_factors=(2, 1), smoothing_sigmas=(3.0, 0.0), max_samples=20_000, n_iterations=100)

#: default instance-specific refinement, coarse to fine: ``(voxel size in mm, Adam steps)`` per
#: level; ``None`` is the network's working grid (chosen on validation pairs, see docs/registration.md)
REFINE_LEVELS: tuple[tuple[float | None, int], ...] = ((None, 100), (2.0, 30))

#: settings of :func:`refine_displacement` at every level
REFINE_SETTINGS = dict(lr=0.1, lambda_smooth=3.0, window=9)


def normalise_intensity(volume: np.ndarray) -> np.ndarray:
    """``volume / q`` clipped to ``[0, 2]``, ``q`` the 99th percentile of the positive voxels
    (any intensity scale in, about ``[0, 1]`` out; the network's input convention)."""
    v = np.asarray(volume, dtype=np.float32)
    positive = v[v > 0]
    if positive.size == 0:
        raise ValueError("volume has no positive signal to normalise")
    q = float(np.percentile(positive, 99.0))
    return np.clip(v / q, 0.0, 2.0).astype(np.float32)


def _index_grid(shape: Sequence[int]) -> np.ndarray:
    """``(3, *shape)`` float64 voxel indices."""
    return np.indices(tuple(int(s) for s in shape), dtype=np.float64)


def _apply_matrix(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """4x4 ``matrix`` applied to ``(3, ...)`` points."""
    flat = points.reshape(3, -1)
    out = matrix[:3, :3] @ flat + matrix[:3, 3:4]
    return out.reshape(points.shape)


def _sample(volume: np.ndarray, index: np.ndarray, order: int, default_value: float) -> np.ndarray:
    """``volume`` at fractional voxel ``index`` ``(3, *out)``; 0 nearest (dtype kept), 1 linear, 3 cubic."""
    from scipy import ndimage

    if order == 0:
        idx = np.rint(index).astype(np.intp)
        inside = np.all([(idx[a] >= 0) & (idx[a] < volume.shape[a]) for a in range(3)], axis=0)
        for a in range(3):
            np.clip(idx[a], 0, volume.shape[a] - 1, out=idx[a])
        out = volume[idx[0], idx[1], idx[2]]
        return np.where(inside, out, np.asarray(default_value).astype(volume.dtype))
    work = volume if volume.dtype in (np.float32, np.float64) else volume.astype(np.float32)
    return ndimage.map_coordinates(work, index, order=order, mode="constant", cval=float(default_value),
                                   prefilter=order > 1)


class DeformableTransform:
    """Affine pre-alignment followed by a dense displacement: what ``recon.register(method="learned")`` finds.

    A point ``x`` of the fixed grid (world, mm) is mapped by the displacement ``u`` (stored on a
    working grid of affine ``work_affine``, in its voxel units, interpolated linearly) and then by
    the affine ``matrix`` (fixed world -> moving world, ITK's direction as
    :class:`recon.preprocess.register.RegistrationResult`)::

        p = work_affine^-1 x;   x' = work_affine (p + u(p));   y = matrix x'

    and ``warped(x) = moving(y)``: one resampling of the moving image, however many steps.

    Attributes:
        fixed_shape, fixed_affine: the output grid.
        matrix: 4x4 RAS world-to-world affine of the pre-alignment.
        displacement: ``(3, *work_shape)`` float32 displacement (work-grid voxels), or None.
        work_affine: 4x4 affine of the displacement's grid.
        moving_shape, moving_affine: the moving image's grid (the default of :meth:`apply`).
    """

    def __init__(self, fixed_shape: Sequence[int], fixed_affine: np.ndarray, matrix: np.ndarray,
                 displacement: np.ndarray | None, work_affine: np.ndarray, moving_shape: Sequence[int],
                 moving_affine: np.ndarray) -> None:
        self.fixed_shape = tuple(int(s) for s in fixed_shape)
        self.fixed_affine = np.asarray(fixed_affine, dtype=np.float64)
        self.matrix = np.asarray(matrix, dtype=np.float64)
        self.displacement = None if displacement is None else np.asarray(displacement, dtype=np.float32)
        self.work_affine = np.asarray(work_affine, dtype=np.float64)
        self.moving_shape = tuple(int(s) for s in moving_shape)
        self.moving_affine = np.asarray(moving_affine, dtype=np.float64)

    def fixed_to_moving(self, points: np.ndarray) -> np.ndarray:
        """``(3, ...)`` fixed-world points (mm) -> moving-world points (mm)."""
        x = np.asarray(points, dtype=np.float64)
        if self.displacement is not None:
            p = _apply_matrix(np.linalg.inv(self.work_affine), x)
            # outside the working grid the field is continued by its border value
            clipped = np.stack([np.clip(p[a], 0, self.displacement.shape[a + 1] - 1) for a in range(3)])
            u = np.stack([_sample(self.displacement[a], clipped, 1, 0.0) for a in range(3)])
            x = _apply_matrix(self.work_affine, p + u)
        return _apply_matrix(self.matrix, x)

    def apply(self, volume: np.ndarray | torch.Tensor, order: int = 1, *, affine: np.ndarray | None = None,
              default_value: float = 0.0) -> np.ndarray:
        """Warp an image (``order=1``/``3``) or a label map (``order=0``) of the moving subject.

        Args:
            volume: (X, Y, Z) array in the moving image's space (numpy or torch).
            order: 0 nearest neighbour (labels, masks: dtype kept), 1 linear, 3 cubic B-spline.
            affine: its 4x4 affine (default the moving image's; needed when its shape differs).
            default_value: value outside the volume.

        Returns:
            numpy array of shape ``fixed_shape`` (affine ``fixed_affine``); float32 for
            orders 1 and 3 (float64 input stays float64), the input dtype for order 0.

        Raises:
            ValueError: bad order, a 3-D volume of another shape without ``affine``.
        """
        if isinstance(order, bool) or order not in (0, 1, 3):
            raise ValueError(f"order must be 0 (nearest, labels), 1 (linear) or 3 (cubic B-spline), got {order!r}")
        if isinstance(volume, torch.Tensor):
            volume = volume.detach().cpu().numpy()
        data = np.asarray(volume)
        if data.ndim != 3:
            raise ValueError(f"volume must be a 3-D (X, Y, Z) array, got shape {data.shape}")
        if affine is None:
            if data.shape != self.moving_shape:
                raise ValueError(f"volume must have the moving image's shape {self.moving_shape} when affine is "
                                 f"not given, got shape {data.shape}")
            affine = self.moving_affine
        affine = np.asarray(affine, dtype=np.float64)
        if affine.shape != (4, 4) or not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
            raise ValueError(f"affine must be an invertible 4x4 matrix, got {describe(affine)}")
        dtype = data.dtype
        if data.dtype == bool:
            data = data.astype(np.uint8)
        world = _apply_matrix(self.fixed_affine, _index_grid(self.fixed_shape))
        index = _apply_matrix(np.linalg.inv(affine), self.fixed_to_moving(world))
        out = _sample(data, index, order, default_value)
        if order == 0:
            return out.astype(dtype)
        return out.astype(np.float64 if dtype == np.float64 else np.float32)

    def jacobian_determinant(self) -> np.ndarray | None:
        """Jacobian determinant of the deformable part on the working grid (None without one)."""
        if self.displacement is None:
            return None
        return jacobian_determinant(torch.from_numpy(self.displacement)[None].double())[0].numpy()


def resample_to_grid(volume: np.ndarray, affine: np.ndarray, shape: Sequence[int], grid_affine: np.ndarray,
                     order: int = 1, matrix: np.ndarray | None = None) -> np.ndarray:
    """``volume`` (world position from ``affine``) sampled on another grid (``shape``,
    ``grid_affine``), optionally through a world-to-world ``matrix`` (grid world -> volume world)."""
    t = DeformableTransform(shape, grid_affine, np.eye(4) if matrix is None else matrix, None, np.eye(4),
                            np.asarray(volume).shape, affine)
    return t.apply(volume, order)


def carry_displacement(displacement: np.ndarray, work_affine: np.ndarray, shape: Sequence[int],
                       grid_affine: np.ndarray) -> np.ndarray:
    """A working-grid displacement expressed on another grid (same world map, new voxel units).

    The map ``x -> work_affine (p + u(p))``, ``p = work_affine^-1 x`` (as in
    :class:`DeformableTransform`) is evaluated at the centres of the grid ``(shape,
    grid_affine)`` and written back as a displacement in that grid's voxels, so the two fields
    describe the same transform (up to the linear interpolation of ``u``).

    Args:
        displacement: ``(3, *work_shape)``.
        work_affine: its grid's 4x4.
        shape, grid_affine: the new grid.

    Returns:
        ``(3, *shape)`` float32.
    """
    q = _index_grid(shape)
    # the deformable part of DeformableTransform.fixed_to_moving (identity affine), back in grid voxels
    t = DeformableTransform(shape, grid_affine, np.eye(4), displacement, work_affine, shape, grid_affine)
    moved = _apply_matrix(np.linalg.inv(grid_affine), t.fixed_to_moving(_apply_matrix(grid_affine, q)))
    return (moved - q).astype(np.float32)


def refine_levels(refine: object, work_voxel: float = WORK_VOXEL_SIZE) -> tuple[tuple[float, int], ...]:
    """The refinement schedule ``((voxel_mm, steps), ...)`` of a ``refine`` argument.

    ``True``: :data:`REFINE_LEVELS`; ``False`` or ``0``: none; an int ``n > 0``: ``n`` steps at
    each level of :data:`REFINE_LEVELS`; a sequence of ``(voxel_mm, steps)`` pairs: those levels
    (``voxel_mm`` None: the working grid). ``None`` voxel sizes become ``work_voxel``.

    Raises:
        TypeError: not a bool, an int or a sequence of pairs.
        ValueError: a negative step count, a voxel size <= 0.
    """
    if isinstance(refine, (bool, np.bool_)):
        levels = REFINE_LEVELS if refine else ()
    elif isinstance(refine, (int, np.integer)):
        n = int(refine)
        if n < 0:
            raise ValueError(f"refine must be True, False, an int >= 0 (Adam steps per level) or a sequence of "
                             f"(voxel_mm, steps) pairs, got {n}")
        levels = tuple((v, n) for v, _ in REFINE_LEVELS) if n else ()
    elif isinstance(refine, (list, tuple)):
        levels = tuple(refine)
        for level in levels:
            if not isinstance(level, (list, tuple)) or len(level) != 2:
                raise TypeError(f"refine levels must be (voxel_mm, steps) pairs, got {level!r}")
            voxel, steps = level
            if voxel is not None:
                check_number("refine voxel_mm", voxel, low=0.0, strict=True)
            check_int("refine steps", steps, minimum=0)
    else:
        raise TypeError(f"refine must be True, False, an int >= 0 (Adam steps per level) or a sequence of "
                        f"(voxel_mm, steps) pairs, got {describe(refine)}")
    return tuple((float(work_voxel if v is None else v), int(n)) for v, n in levels if int(n) > 0)


def refine_transform(transform: DeformableTransform, fixed: np.ndarray, moving: np.ndarray, *,
                     levels: Sequence[tuple[float, int]] | None = None,
                     lr: float = REFINE_SETTINGS["lr"], lambda_smooth: float = REFINE_SETTINGS["lambda_smooth"],
                     window: int = REFINE_SETTINGS["window"], start: dict | None = None,
                     device: torch.device | str = "cpu") -> DeformableTransform:
    """Instance-specific refinement of a learned transform, coarse to fine (:func:`refine_displacement`).

    At each level ``(voxel_mm, steps)`` the fixed image is resampled to ``voxel_mm`` (cubic; never
    finer than its own smallest voxel), the moving image is carried there once through the
    transform's affine (linear), both are normalised (:func:`normalise_intensity`), the current
    displacement is expressed on that grid (:func:`carry_displacement`) and ``steps`` Adam steps
    of the pair's own loss refine it. The affine pre-alignment is kept.

    Args:
        transform: the network's :class:`DeformableTransform` (its displacement, or None: zero).
        fixed, moving: the volumes it maps (on ``transform.fixed_affine`` / ``moving_affine``).
        levels: ``(voxel_mm, steps)`` from coarse to fine (:func:`refine_levels`; None:
            :data:`REFINE_LEVELS` with the working grid of :data:`WORK_VOXEL_SIZE`).
        lr, lambda_smooth, window: :func:`refine_displacement` settings.
        start: the working-grid images already made (``prealign``'s dict), reused at the level
            of its grid.
        device: where the Adam steps run (the images and field are moved there level by level;
            the returned displacement is a CPU array).

    Returns:
        A new :class:`DeformableTransform` whose displacement lives on the last level's grid.

    Raises:
        ValueError: ``device`` not a torch device (raised before any work); ``levels`` are checked
            by :func:`refine_levels`.
    """
    from recon.preprocess import resample
    from recon.preprocess.resample import voxel_sizes

    levels = refine_levels(True) if levels is None else refine_levels(tuple(levels))
    try:  # a bad device fails before any resampling
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda', got {device!r}") from err
    finest = float(np.min(voxel_sizes(transform.fixed_affine)))
    u, grid_affine = transform.displacement, transform.work_affine
    for voxel, steps in levels:
        voxel = max(float(voxel), finest)
        if start is not None and np.allclose(voxel_sizes(start["affine"]), voxel):
            f, m, level_affine = start["fixed"], start["moving"], start["affine"]
        else:
            f, level_affine = resample(fixed, transform.fixed_affine, voxel, order=3)
            m = resample_to_grid(moving, transform.moving_affine, f.shape, level_affine, order=1,
                                 matrix=transform.matrix)
            f, m = normalise_intensity(np.maximum(f, 0)), normalise_intensity(np.maximum(m, 0))
        if u is None:
            u = np.zeros((3, *f.shape), np.float32)
        elif u.shape[1:] != f.shape or not np.allclose(grid_affine, level_affine):
            u = carry_displacement(u, grid_affine, f.shape, level_affine)
        grid_affine = level_affine
        refined = refine_displacement(torch.from_numpy(f)[None, None].to(dev), torch.from_numpy(m)[None, None].to(dev),
                                      torch.from_numpy(np.ascontiguousarray(u))[None].to(dev), steps, lr=lr,
                                      lambda_smooth=lambda_smooth, window=window)
        u = refined[0].cpu().numpy()
    return DeformableTransform(transform.fixed_shape, transform.fixed_affine, transform.matrix, u, grid_affine,
                               transform.moving_shape, transform.moving_affine)


def prealign(fixed: np.ndarray, fixed_affine: np.ndarray, moving: np.ndarray, moving_affine: np.ndarray, *,
             voxel_size: float = WORK_VOXEL_SIZE, num_threads: int | None = 1) -> dict:
    """The learned method's first stage: both images on the working grid, affinely aligned.

    Steps: ``fixed`` -> ``voxel_size`` mm (:func:`recon.preprocess.resample`, cubic); ``moving``
    likewise; affine registration of the two (:func:`recon.preprocess.register`, Mattes mutual
    information, :data:`PREALIGN_SETTINGS`: a coarse, fast setting); the moving image resampled
    once (linear) through the found affine onto the fixed working grid; both normalised by
    :func:`normalise_intensity`.

    Returns:
        dict with ``fixed`` and ``moving`` (work-grid float32 arrays, normalised), ``affine``
        (the working grid's 4x4), ``matrix`` (fixed world -> moving world, 4x4 RAS).
    """
    from recon.preprocess import register, resample

    fixed_w, work_affine = resample(fixed, fixed_affine, voxel_size, order=3)
    moving_w, moving_w_affine = resample(moving, moving_affine, voxel_size, order=3)
    fixed_w, moving_w = np.maximum(fixed_w, 0), np.maximum(moving_w, 0)
    # one thread by default: bitwise reproducible (several threads reduce sums in varying order); the
    # working grid is small, so it costs little
    result = register(fixed_w, moving_w, fixed_affine=work_affine, moving_affine=moving_w_affine,
                      transform="affine", num_threads=num_threads, **PREALIGN_SETTINGS)
    aligned = resample_to_grid(moving, moving_affine, fixed_w.shape, work_affine, order=1, matrix=result.matrix)
    return {"fixed": normalise_intensity(fixed_w), "moving": normalise_intensity(aligned),
            "affine": work_affine, "matrix": result.matrix}


def register_with_network(model: RegistrationNet, fixed: np.ndarray, fixed_affine: np.ndarray, moving: np.ndarray,
                          moving_affine: np.ndarray, *, voxel_size: float = WORK_VOXEL_SIZE,
                          num_threads: int | None = 1, device: torch.device | str = "cpu",
                          refine: object = True) -> DeformableTransform:
    """Affine pre-alignment (:func:`prealign`), the network's displacement on the working grid,
    then (``refine``) its instance-specific refinement (:func:`refine_transform`).

    Args:
        model: a trained 3-D :class:`RegistrationNet` (eval mode is set here).
        fixed, moving: (X, Y, Z) float arrays, finite, any intensity scale.
        fixed_affine, moving_affine: their 4x4 voxel-to-world (RAS mm) affines.
        voxel_size: the working grid the network was trained on (mm).
        num_threads: SimpleITK threads of the pre-alignment (default 1: reproducible to the bit;
            None: SimpleITK's default, faster on many cores, results vary with rounding).
        device: where the network and the refinement's Adam steps run (the affine pre-alignment
            and the resampling are SimpleITK / scipy on the CPU).
        refine: True (:data:`REFINE_LEVELS`), False / 0 (the network's field as is), an int
            (Adam steps per level) or ``(voxel_mm, steps)`` levels (:func:`refine_levels`).

    Returns:
        :class:`DeformableTransform` from the fixed grid to the moving image.
    """
    levels = refine_levels(refine, voxel_size)
    pair = prealign(fixed, fixed_affine, moving, moving_affine, voxel_size=voxel_size, num_threads=num_threads)
    dev = torch.device(device)
    model = model.to(dev).eval()
    f = torch.from_numpy(pair["fixed"])[None, None].to(dev)
    m = torch.from_numpy(pair["moving"])[None, None].to(dev)
    with torch.no_grad():
        u = model.field(f, m)[0].float().cpu().numpy()
    transform = DeformableTransform(np.shape(fixed), fixed_affine, pair["matrix"], u, pair["affine"],
                                    np.shape(moving), moving_affine)
    if levels:
        transform = refine_transform(transform, fixed, moving, levels=levels, start=pair, device=dev)
    return transform
