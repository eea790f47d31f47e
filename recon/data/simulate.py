"""Multi-coil k-space from real magnitude images, written as fastMRI-schema HDF5.

The forward model, per slice, with ``m`` the magnitude image on the encoded grid::

    x      = m * exp(i * phi)                  smooth random phase phi (low-order Fourier series)
    y_c    = F(S_c * x) + n_c                  S_c: sigpy birdcage maps, sum_c |S_c|^2 = 1
    n      ~ CN(0, sigma^2 * Psi)              Psi: inter-coil correlation (unit diagonal)
    sigma  = mean(m over the object) / snr

``F`` is the centred orthonormal 2-D FFT (``recon.ops.fft2c``), so ``sigma`` is the noise
standard deviation of a complex sample in k-space and in image space alike. The targets
are computed from the noisy, fully-sampled k-space exactly as fastMRI's are: the RSS of
the coil images cropped to the reconSpace size (``reconstruction_rss``), and for
single-coil files the magnitude of the coil-combined image (``reconstruction_esc``;
fastMRI's emulated single-coil data, here the sensitivity-weighted combination
``sum_c conj(S_c) * image_c``, which is optimal because the maps have unit RSS).

Everything is a pure function of the images, the :class:`SimulationConfig` and the seed.
"""

from __future__ import annotations

import functools
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import scipy.fft

from recon.data.header import make_ismrmrd_header
from recon.data.io import data_files, load_nifti, remove_stale_temporaries, write_fastmri_file
from recon.ops._checks import check_challenge
from recon.ops.crop import center_crop_or_pad

__all__ = [
    "SimulationConfig",
    "SimulatedVolume",
    "birdcage_maps",
    "smooth_phase",
    "b0_phase",
    "noise_covariance",
    "simulate_multicoil",
    "write_simulated",
    "nifti_slices",
    "simulate_nifti",
    "simulate_folder",
    "name_seed",
]


@dataclass(frozen=True)
class SimulationConfig:
    """Parameters of the simulation.

    Attributes:
        num_coils: receive coils.
        coil_radius: radius of the birdcage ring relative to the half field of view
            (sigpy's ``r``; larger = flatter, less localised maps).
        snr: mean object magnitude / complex noise standard deviation; None for no noise.
        noise_correlation: correlation ``rho`` between neighbouring coils; the noise
            covariance is ``Psi[i, j] = rho ** |i - j|`` (always positive definite for
            ``|rho| < 1``).
        phase_amplitude: peak absolute value of the smooth background phase, radians.
        phase_order: highest spatial frequency of the phase (cycles over twice the FOV).
        readout_oversampling: factor by which the readout (rows) field of view is extended
            with zeros, as in fastMRI's brain data (2: 640 rows for a 320 reconSpace).
        matrix_size: image grid ``(H, W)`` the slices are zero-padded / cropped to (centred);
            None rounds each dimension up to a multiple of 16.
        intensity_scale: images are divided by the volume maximum and multiplied by this.
        acquisition: the ``acquisition`` attribute written to files (e.g. ``"AXT1"``).
        coil_rotation: rotation of the coil ring, radians (0: sigpy's layout).
        coil_offset: ``(dy, dx)`` shift of the ring's centre relative to the half FOV (a
            head off the coil's centre); ``coil_radius - |coil_offset|`` must stay > 1.
        b0_amplitude: peak absolute value, radians, of an added B0-like phase: a few
            localised Gaussian off-resonance blobs (susceptibility near air-tissue
            boundaries), on top of the smooth phase. 0 adds nothing.
        phase_encoding: ``"width"`` (default: the images' columns are phase encoded) or
            ``"height"``: the images are turned by 90 degrees first, so their vertical axis
            is phase encoded (stored data keep fastMRI's layout: phase encoding along W).
    """

    num_coils: int = 8
    coil_radius: float = 1.5
    snr: float | None = 40.0
    noise_correlation: float = 0.0
    phase_amplitude: float = float(np.pi / 2)
    phase_order: int = 2
    readout_oversampling: int = 1
    matrix_size: tuple[int, int] | None = None
    intensity_scale: float = 1e-3
    acquisition: str = "SIM"
    coil_rotation: float = 0.0
    coil_offset: tuple[float, float] = (0.0, 0.0)
    b0_amplitude: float = 0.0
    phase_encoding: str = "width"

    def __post_init__(self) -> None:
        if not isinstance(self.num_coils, (int, np.integer)) or self.num_coils < 1:
            raise ValueError(f"num_coils must be a positive int, got {self.num_coils!r}")
        if not self.coil_radius > 1.0:
            raise ValueError(f"coil_radius must be > 1 (coils outside the FOV), got {self.coil_radius!r}")
        if self.snr is not None and not self.snr > 0:
            raise ValueError(f"snr must be positive or None (noiseless), got {self.snr!r}")
        if not -1.0 < self.noise_correlation < 1.0:
            raise ValueError(f"noise_correlation must be in (-1, 1), got {self.noise_correlation!r}")
        if self.phase_amplitude < 0:
            raise ValueError(f"phase_amplitude must be >= 0, got {self.phase_amplitude!r}")
        if not isinstance(self.phase_order, (int, np.integer)) or self.phase_order < 0:
            raise ValueError(f"phase_order must be an int >= 0, got {self.phase_order!r}")
        if not isinstance(self.readout_oversampling, (int, np.integer)) or self.readout_oversampling < 1:
            raise ValueError(f"readout_oversampling must be an int >= 1, got {self.readout_oversampling!r}")
        if self.matrix_size is not None and (
            len(self.matrix_size) != 2 or min(int(v) for v in self.matrix_size) < 2
        ):
            raise ValueError(f"matrix_size must be (H, W) with both >= 2, got {self.matrix_size!r}")
        if not self.intensity_scale > 0:
            raise ValueError(f"intensity_scale must be positive, got {self.intensity_scale!r}")
        if not np.isfinite(self.coil_rotation):
            raise ValueError(f"coil_rotation must be a finite number (radians), got {self.coil_rotation!r}")
        if len(self.coil_offset) != 2 or not all(np.isfinite(v) for v in self.coil_offset) \
                or not self.coil_radius - float(np.hypot(*self.coil_offset)) > 1.0:
            raise ValueError(
                "coil_offset must be (dy, dx) with coil_radius - |coil_offset| > 1 (coils outside the FOV), "
                f"got {self.coil_offset!r} with coil_radius {self.coil_radius!r}"
            )
        if not self.b0_amplitude >= 0:
            raise ValueError(f"b0_amplitude must be >= 0 (radians), got {self.b0_amplitude!r}")
        if self.phase_encoding not in ("width", "height"):
            raise ValueError(f"phase_encoding must be 'width' or 'height', got {self.phase_encoding!r}")


class SimulatedVolume(NamedTuple):
    """Output of :func:`simulate_multicoil`.

    Attributes:
        kspace: complex64 ``(slices, coils, H_enc, W)`` noisy, fully sampled.
        sens_maps: complex64 ``(coils, H_enc, W)``, unit RSS.
        image: complex64 ``(slices, H_enc, W)`` the noiseless phase-modulated image.
        target: float32 ``(slices, H, W)`` RSS of the noisy coil images, cropped to reconSpace.
        noise_std: sigma of the complex noise (0.0 when noiseless).
        recon_size: reconSpace ``(H, W)``.
    """

    kspace: np.ndarray
    sens_maps: np.ndarray
    image: np.ndarray
    target: np.ndarray
    noise_std: float
    recon_size: tuple[int, int]


@functools.lru_cache(maxsize=8)
def _birdcage_cached(num_coils: int, height: int, width: int, coil_radius: float) -> np.ndarray:
    import sigpy.mri

    maps = sigpy.mri.birdcage_maps((num_coils, height, width), r=coil_radius, dtype=np.complex64)
    maps.setflags(write=False)
    return maps


@functools.lru_cache(maxsize=8)
def _birdcage_moved(
    num_coils: int, height: int, width: int, coil_radius: float, rotation: float, offset: tuple[float, float]
) -> np.ndarray:
    # sigpy.mri.birdcage_maps' model (a 1/r magnitude and the angle as phase around each coil),
    # with the ring turned by ``rotation`` and its centre moved by ``offset``
    c, y, x = np.mgrid[:num_coils, :height, :width]
    angle = c * (2 * np.pi / num_coils) + rotation
    coilx = coil_radius * np.cos(angle) + offset[1]
    coily = coil_radius * np.sin(angle) + offset[0]
    x_co = (x - width / 2.0) / (width / 2.0) - coilx
    y_co = (y - height / 2.0) / (height / 2.0) - coily
    out = (1.0 / np.sqrt(x_co**2 + y_co**2)) * np.exp(1j * (np.arctan2(x_co, -y_co) - angle))
    out /= np.sqrt((np.abs(out) ** 2).sum(0))
    maps = out.astype(np.complex64)
    maps.setflags(write=False)
    return maps


def birdcage_maps(
    num_coils: int,
    shape: tuple[int, int],
    coil_radius: float = 1.5,
    rotation: float = 0.0,
    offset: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Birdcage coil sensitivities (``sigpy.mri.birdcage_maps``' model), RSS-normalised to 1.

    Args:
        num_coils: coils, evenly spaced on a ring.
        shape: image grid ``(H, W)``.
        coil_radius: ring radius relative to the half FOV.
        rotation: rotation of the ring, radians.
        offset: ``(dy, dx)`` shift of the ring's centre relative to the half FOV.

    Returns:
        complex64 ``(num_coils, H, W)`` (a read-only array shared between calls).
    """
    height, width = (int(v) for v in shape)
    if rotation == 0.0 and tuple(offset) == (0.0, 0.0):
        return _birdcage_cached(int(num_coils), height, width, float(coil_radius))
    return _birdcage_moved(
        int(num_coils), height, width, float(coil_radius), float(rotation), (float(offset[0]), float(offset[1]))
    )


def b0_phase(shape: Sequence[int], rng: np.random.Generator, amplitude: float, num_blobs: int = 3) -> np.ndarray:
    """A B0-like (off-resonance) phase: a sum of ``num_blobs`` Gaussian blobs of random sign,
    centre and width (8-25 % of the FOV), scaled to peak ``amplitude`` radians.

    Args:
        shape: 2-D grid ``(H, W)``.
        rng: numpy Generator.
        amplitude: peak absolute value, radians.
        num_blobs: number of blobs.

    Returns:
        float32 ``(H, W)``.
    """
    height, width = (int(v) for v in shape)
    if amplitude == 0:
        return np.zeros((height, width), dtype=np.float32)
    y = (np.arange(height) - height / 2.0)[:, None] / height
    x = (np.arange(width) - width / 2.0)[None, :] / width
    field = np.zeros((height, width))
    for _ in range(num_blobs):
        cy, cx = rng.uniform(-0.3, 0.3, 2)
        sy, sx = rng.uniform(0.08, 0.25, 2)
        field += rng.choice((-1.0, 1.0)) * np.exp(-0.5 * (((y - cy) / sy) ** 2 + ((x - cx) / sx) ** 2))
    peak = np.abs(field).max()
    if peak > 0:
        field *= amplitude / peak
    return field.astype(np.float32)


def smooth_phase(
    shape: Sequence[int], rng: np.random.Generator, amplitude: float, order: int
) -> np.ndarray:
    """A smooth random real field: a low-order Fourier series, scaled to peak ``amplitude``.

    ``phi(r) = Re sum_k c_k exp(i pi k . r / N)`` over integer ``|k_d| <= order`` with
    ``c_k ~ CN(0, 1)``: the period is twice the extent on every axis, so the field is not
    forced to wrap around.

    Args:
        shape: 2-D ``(H, W)`` or 3-D ``(S, H, W)`` grid.
        rng: numpy Generator the coefficients are drawn from.
        amplitude: peak absolute value of the result.
        order: highest frequency index per axis.

    Returns:
        float32 array of ``shape``.
    """
    if amplitude == 0 or order == 0:
        return np.zeros(shape, dtype=np.float32)
    freqs = np.arange(-order, order + 1)
    coeffs = rng.standard_normal((len(freqs),) * len(shape)) + 1j * rng.standard_normal(
        (len(freqs),) * len(shape)
    )
    field = coeffs
    for axis_len in shape:
        basis = np.exp(1j * np.pi * np.outer(freqs, np.arange(axis_len)) / axis_len)  # (K, n)
        # contract the leading frequency axis; the new spatial axis goes last
        field = np.tensordot(field, basis, axes=([0], [0]))
    field = field.real
    peak = np.abs(field).max()
    if peak > 0:
        field *= amplitude / peak
    return field.astype(np.float32)


def noise_covariance(num_coils: int, correlation: float) -> np.ndarray:
    """``Psi[i, j] = correlation ** |i - j|`` (Kac-Murdock-Szego; positive definite)."""
    index = np.arange(num_coils)
    return correlation ** np.abs(index[:, None] - index[None, :]).astype(np.float64)


def _fft2c(x: np.ndarray) -> np.ndarray:
    axes = (-2, -1)
    x = scipy.fft.ifftshift(x, axes=axes)
    x = scipy.fft.fft2(x, axes=axes, norm="ortho", workers=-1)
    return scipy.fft.fftshift(x, axes=axes)


def _ifft2c(x: np.ndarray) -> np.ndarray:
    axes = (-2, -1)
    x = scipy.fft.ifftshift(x, axes=axes)
    x = scipy.fft.ifft2(x, axes=axes, norm="ortho", workers=-1)
    return scipy.fft.fftshift(x, axes=axes)


def name_seed(name: str) -> int:
    """The simulation seed of a file or volume name: the CRC-32 of its UTF-8 bytes (the same in
    every process and run, unlike ``hash``). fastMRI's mask seed is :func:`recon.masks.volume_seed`."""
    return zlib.crc32(name.encode())


def _as_rng(seed: int | np.random.SeedSequence | np.random.Generator) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (int, np.integer, np.random.SeedSequence)) and not isinstance(seed, bool):
        return np.random.default_rng(seed)
    raise TypeError(f"seed must be an int, SeedSequence or numpy Generator, got {type(seed).__name__}")


def simulate_multicoil(
    images: np.ndarray,
    config: SimulationConfig = SimulationConfig(),
    seed: int | np.random.SeedSequence | np.random.Generator = 0,
) -> SimulatedVolume:
    """Simulate fully-sampled multi-coil k-space of a stack of magnitude images.

    Args:
        images: real ``(slices, H, W)`` or ``(H, W)`` magnitude images (e.g. slices of a
            T1 volume), non-negative.
        config: simulation parameters.
        seed: seed or Generator; equal seeds give identical output.

    Returns:
        :class:`SimulatedVolume`.

    Raises:
        TypeError: complex or non-numeric images.
        ValueError: wrong rank, negative or non-finite values, or an all-zero volume.

    Example:
        >>> import numpy as np
        >>> sim = simulate_multicoil(np.ones((1, 32, 32)), SimulationConfig(num_coils=4), seed=0)
        >>> sim.kspace.shape
        (1, 4, 32, 32)
    """
    images = np.asarray(images)
    if np.iscomplexobj(images) or not np.issubdtype(images.dtype, np.number):
        raise TypeError(f"images must be real magnitude images, got {images.dtype} array")
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3 or min(images.shape) < 1:
        raise ValueError(f"images must be (slices, H, W) or (H, W), got shape {images.shape}")
    images = images.astype(np.float32)
    if config.phase_encoding == "height":
        images = np.ascontiguousarray(np.rot90(images, k=1, axes=(-2, -1)))
    if not np.all(np.isfinite(images)) or images.min() < 0:
        raise ValueError("images must be finite and non-negative (magnitude images)")
    peak = float(images.max())
    if peak <= 0:
        raise ValueError("images are all zero: nothing to simulate")
    rng = _as_rng(seed)

    if config.matrix_size is None:
        recon_size = tuple(int(-(-n // 16) * 16) for n in images.shape[-2:])
    else:
        recon_size = tuple(int(v) for v in config.matrix_size)
    enc_size = (recon_size[0] * config.readout_oversampling, recon_size[1])
    magnitude = center_crop_or_pad(images * (config.intensity_scale / peak), enc_size)  # (S, H_enc, W)

    phase = smooth_phase(magnitude.shape if magnitude.shape[0] > 1 else enc_size, rng,
                         config.phase_amplitude, config.phase_order)
    if config.b0_amplitude > 0:
        phase = phase + b0_phase(enc_size, rng, config.b0_amplitude)
    image = (magnitude * np.exp(1j * phase)).astype(np.complex64)
    if image.ndim == 2:
        image = image[None]
    maps = birdcage_maps(config.num_coils, enc_size, config.coil_radius, config.coil_rotation, config.coil_offset)
    coil_images = image[:, None] * maps[None]  # (S, C, H, W)
    kspace = _fft2c(coil_images).astype(np.complex64, copy=False)

    noise_std = 0.0
    if config.snr is not None:
        foreground = magnitude[magnitude > 0.1 * magnitude.max()]
        noise_std = float(foreground.mean() / config.snr)
        shape = kspace.shape
        white = rng.standard_normal((*shape, 2), dtype=np.float32).view(np.complex64)[..., 0]
        white *= np.float32(noise_std / np.sqrt(2.0))
        if config.noise_correlation != 0.0:
            chol = np.linalg.cholesky(noise_covariance(config.num_coils, config.noise_correlation))
            white = np.einsum("ij,sjhw->sihw", chol.astype(np.complex64), white, optimize=True)
        kspace += white
    coil_noisy = _ifft2c(kspace)
    target = np.sqrt((np.abs(coil_noisy) ** 2).sum(axis=1))
    target = center_crop_or_pad(target, recon_size).astype(np.float32)
    return SimulatedVolume(
        kspace=kspace,
        sens_maps=np.asarray(maps),
        image=image,
        target=target,
        noise_std=noise_std,
        recon_size=recon_size,  # type: ignore[arg-type]
    )


def _single_coil(sim: SimulatedVolume) -> tuple[np.ndarray, np.ndarray]:
    """Coil-combined k-space ``F(sum_c conj(S_c) F^-1 y_c)`` and its ESC target."""
    coil_images = _ifft2c(sim.kspace)
    combined = (np.conj(sim.sens_maps)[None] * coil_images).sum(axis=1)
    kspace = _fft2c(combined).astype(np.complex64)
    esc = center_crop_or_pad(np.abs(combined), sim.recon_size).astype(np.float32)
    return kspace, esc


def write_simulated(
    path: str | os.PathLike,
    sim: SimulatedVolume,
    *,
    challenge: str = "multicoil",
    acquisition: str = "SIM",
    patient_id: str = "",
    voxel_size: Sequence[float] = (1.0, 1.0, 1.0),
    mask_func=None,
    mask_seed: int | Sequence[int] | None = None,
) -> Path:
    """Write a :class:`SimulatedVolume` as a fastMRI-format file (atomically).

    Without ``mask_func`` this is a train/val-style file: full k-space plus targets and
    the attrs ``acquisition``, ``max``, ``norm``, ``patient_id``. With ``mask_func`` it is a
    test-style file: undersampled k-space, a ``mask`` dataset, attrs ``acceleration`` and
    ``num_low_frequency``, and no targets.

    Args:
        path: destination ``.h5``.
        sim: the simulated volume.
        challenge: ``"multicoil"`` or ``"singlecoil"`` (coil-combined k-space ``(S, H, W)``
            with ``reconstruction_esc`` and ``reconstruction_rss``).
        acquisition: ``acquisition`` attribute.
        patient_id: ``patient_id`` attribute (default: derived from the file name).
        voxel_size: ``(dH, dW, slice thickness)`` in mm, for the header's field of view.
        mask_func: fastMRI-style mask function for a test-style file.
        mask_seed: seed passed to ``mask_func`` (default: the file name's character codes).

    Returns:
        ``path``.
    """
    check_challenge(challenge)
    path = Path(path)
    num_slices, num_coils, enc_h, enc_w = sim.kspace.shape
    rss = sim.target
    if challenge == "singlecoil":
        kspace, esc = _single_coil(sim)
        targets = {"reconstruction_esc": esc, "reconstruction_rss": rss}
        stored_target = esc
    else:
        kspace = sim.kspace
        targets = {"reconstruction_rss": rss}
        stored_target = rss
    dh, dw, dz = (float(v) for v in voxel_size)
    header = make_ismrmrd_header(
        (enc_h, enc_w),
        sim.recon_size,
        num_coils=num_coils if challenge == "multicoil" else 1,
        num_slices=num_slices,
        fov_mm=(enc_h * dh, enc_w * dw, dz),
        protocol_name=acquisition,
    )
    attrs: dict[str, object] = {
        "acquisition": acquisition,
        "max": float(stored_target.max()),
        "norm": float(np.linalg.norm(stored_target)),
        "patient_id": patient_id or f"sim-{name_seed(path.stem):08x}",
    }
    mask_1d = None
    if mask_func is not None:
        import torch

        from recon.masks import volume_seed

        seed = volume_seed(path.name) if mask_seed is None else mask_seed
        shape = (1, enc_h, enc_w, 2) if challenge == "multicoil" else (enc_h, enc_w, 2)
        mask, num_low = mask_func(shape, None, seed)
        mask_1d = torch.as_tensor(mask).reshape(-1).numpy().astype(bool)
        kspace = (kspace * mask_1d).astype(np.complex64)
        attrs["acceleration"] = int(round(enc_w / max(1, int(mask_1d.sum()))))
        attrs["num_low_frequency"] = int(num_low)
        targets = {}
        del attrs["max"], attrs["norm"]
    return write_fastmri_file(path, kspace, header, mask=mask_1d, attrs=attrs, **targets)


def nifti_slices(volume: np.ndarray, axis: int = 2, slices: Sequence[int] | None = None) -> np.ndarray:
    """Cut 2-D images from a volume, displayed with ``np.rot90`` (RAS axial: anterior up).

    Args:
        volume: ``(X, Y, Z)`` array (a 4-D array uses its first volume).
        axis: axis to slice along (2: axial for RAS-oriented data).
        slices: indices along ``axis`` (default: all).

    Returns:
        ``(num_slices, H, W)`` float32.
    """
    volume = np.asarray(volume)
    if volume.ndim == 4:
        volume = volume[..., 0]
    if volume.ndim != 3:
        raise ValueError(f"volume must be 3-D (X, Y, Z), got shape {volume.shape}")
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis!r}")
    moved = np.moveaxis(volume, axis, 0)
    if slices is not None:
        moved = moved[np.asarray(list(slices), dtype=int)]
    return np.ascontiguousarray(np.rot90(moved, axes=(1, 2))).astype(np.float32)


def _nifti_stem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _check_volume(path: Path, volume: np.ndarray, axis: object) -> np.ndarray:
    """The 3-D magnitude volume of a NIfTI file, or a ``ValueError`` naming the file (and the
    slice along ``axis`` for bad voxels)."""
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis!r}")
    if volume.ndim == 2:  # a single slice stored as (X, Y)
        volume = volume[..., None]
    elif volume.ndim == 4:  # a time series: its first volume
        volume = volume[..., 0]
    if volume.ndim != 3 or min(volume.shape) < 1:
        raise ValueError(f"{path}: the volume must be 3-D (X, Y, Z) (or 4-D, or 2-D), got shape {volume.shape}")
    bad = ~np.isfinite(volume)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{path}: slice {first[axis]} (along axis {axis}) has {int(bad.sum())} NaN/Inf voxel(s), "
            f"the first at voxel {first}; the simulation needs finite magnitude images"
        )
    if not volume.any():
        raise ValueError(f"{path}: the volume is all zero, nothing to simulate")
    negative = volume < 0
    if negative.any():
        if not (volume > 0).any():
            what = f"every non-zero voxel is negative (min {float(volume.min())!r}, max {float(volume.max())!r})"
        else:
            first = tuple(int(i) for i in np.argwhere(negative)[0])
            what = (f"{int(negative.sum())} voxel(s) are negative (min {float(volume.min())!r}), "
                    f"the first in slice {first[axis]} along axis {axis}")
        raise ValueError(
            f"{path}: {what}; the simulation needs magnitude images (>= 0): clip or take np.abs first"
        )
    return volume


def simulate_nifti(
    nifti_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    config: SimulationConfig = SimulationConfig(),
    axis: int = 2,
    slices: Sequence[int] | None = None,
    challenge: str = "multicoil",
    seed: int = 0,
) -> Path:
    """Turn one NIfTI magnitude volume into one fastMRI-format file ``out_dir/<stem>.h5``.

    The volume must be a real, finite, non-negative magnitude image: complex-valued files are
    refused (the simulation adds its own phase; take the magnitude yourself if that is what
    you want), and so are NaN/Inf or negative voxels - every error names the file, and the
    slice for bad voxels. A 4-D file uses its first volume, a 2-D file is one slice.

    Args:
        nifti_path: ``.nii`` / ``.nii.gz`` volume.
        out_dir: output folder (created if needed).
        config: simulation parameters.
        axis: slicing axis (2 = axial for RAS data).
        slices: slice indices along ``axis`` (default: all slices with signal).
        challenge: ``"multicoil"`` or ``"singlecoil"``.
        seed: simulation seed.

    Returns:
        The written file.

    Raises:
        FileNotFoundError: no such file.
        ValueError: unreadable or complex-valued input, NaN/Inf or negative voxels, an all-zero
            volume, a bad ``axis`` or ``slices`` (each naming the file).
    """
    nifti_path = Path(nifti_path)
    volume, _, zooms = load_nifti(nifti_path)
    volume = _check_volume(nifti_path, volume, axis)
    moved = np.moveaxis(volume, axis, 0)
    if slices is None:
        slices = [i for i in range(moved.shape[0]) if moved[i].max() > 0]
    else:
        slices = list(slices)
        if not slices or not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) and
                                 -moved.shape[0] <= i < moved.shape[0] for i in slices):
            raise ValueError(
                f"{nifti_path}: slices must be a non-empty list of indices in [0, {moved.shape[0]}) "
                f"along axis {axis}, got {slices!r}"
            )
    images = nifti_slices(volume, axis=axis, slices=slices)
    zooms = tuple(zooms) + (1.0,) * (3 - len(zooms))
    in_plane = [z for d, z in enumerate(zooms) if d != axis]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        sim = simulate_multicoil(images, config, seed=seed)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{nifti_path}: {err}") from err
    # rot90 puts the second in-plane axis on the rows
    voxel = (in_plane[1], in_plane[0], zooms[axis])
    return write_simulated(
        out_dir / f"{_nifti_stem(nifti_path)}.h5",
        sim,
        challenge=challenge,
        acquisition=config.acquisition,
        voxel_size=voxel,
    )


def simulate_folder(
    in_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    config: SimulationConfig = SimulationConfig(),
    axis: int = 2,
    challenge: str = "multicoil",
    seed: int = 0,
) -> list[Path]:
    """Simulate every ``*.nii`` / ``*.nii.gz`` in a folder (sorted), one output file each.

    Each file's seed is derived from ``seed`` and the file's name, so results do not depend
    on which other files are in the folder. Hidden files are skipped; temporaries left in
    ``out_dir`` by a killed earlier run are removed first. The first file that cannot be
    simulated stops the run with an error naming it (files written before it stay).

    Args:
        in_dir: folder of NIfTI volumes.
        out_dir: output folder for the ``.h5`` files.
        config: simulation parameters.
        axis: slicing axis.
        challenge: ``"multicoil"`` or ``"singlecoil"``.
        seed: base seed.

    Returns:
        The written files.

    Raises:
        FileNotFoundError: ``in_dir`` is not a folder.
        ValueError: it holds no NIfTI files.
    """
    in_dir = Path(in_dir)
    if not in_dir.is_dir():
        raise FileNotFoundError(f"in_dir must be a folder of NIfTI volumes, got {str(in_dir)!r}")
    files = data_files(in_dir, (".nii", ".nii.gz"))
    if not files:
        raise ValueError(f"in_dir {str(in_dir)!r} contains no NIfTI files (*.nii, *.nii.gz)")
    remove_stale_temporaries(out_dir)
    written = []
    for path in files:
        file_seed = np.random.SeedSequence([int(seed), name_seed(path.name)])
        try:
            written.append(
                simulate_nifti(path, out_dir, config=config, axis=axis, challenge=challenge, seed=file_seed)
            )
        except (ValueError, TypeError, OSError) as err:
            if str(path) in str(err):
                raise
            raise type(err)(f"{path}: {err}") from err
    return written
