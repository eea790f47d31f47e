"""Datasets, seeded training masks and data loaders for training and evaluation.

Training masks are drawn fresh for every sample and epoch, yet reproducibly: the mask of
slice ``s`` of file ``f`` in epoch ``e`` is drawn with the seed
``(seed, e, *map(ord, f), s)``, whatever the number of processes, workers or the order in
which samples are read. Validation masks use fastMRI's fixed per-volume seed
``tuple(map(ord, fname))``, so every evaluation sees the same masks.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader

from recon.data import SliceDataset, UnetDataTransform, VarNetDataTransform, VolumeSampler, collate_samples
from recon.data.sample import SPLITS, sample_dir
from recon.data.transforms import volume_seed
from recon.masks import create_mask_for_mask_type
from recon.train.config import EMBEDDED_PREFIX
from recon.train.registry import MODEL_SPECS

__all__ = ["resolve_data_path", "crop_readout", "SeededTrainTransform", "make_transform", "make_dataset", "make_loader"]


def resolve_data_path(data: str | os.PathLike, challenge: str = "multicoil", cache: Optional[str] = None) -> Path:
    """A data folder: ``"embedded:<split>"`` becomes the split's cached folder (generated on
    first use, see :func:`recon.data.sample_dir`); anything else is taken as a path.

    Raises:
        ValueError: unknown embedded split.
        FileNotFoundError: the path does not exist.
    """
    text = str(data)
    if text.startswith(EMBEDDED_PREFIX):
        split = text[len(EMBEDDED_PREFIX):]
        if split not in SPLITS:
            raise ValueError(f"embedded split must be one of {sorted(SPLITS)}, got {split!r} (from {text!r})")
        return sample_dir(split, challenge, cache)
    path = Path(text)
    if not path.exists():
        raise FileNotFoundError(f"data path not found: {text!r}")
    return path


class _FixedSeedMask:
    """A mask function that ignores the seed it is called with and uses its own."""

    def __init__(self, mask_func: Callable, seed: tuple[int, ...]) -> None:
        self.mask_func = mask_func
        self.seed = seed

    def __call__(self, shape: Sequence[int], offset: Optional[int] = None, seed: Any = None):
        return self.mask_func(shape, offset, seed=self.seed)


def _centered_fft_rows(data: np.ndarray, inverse: bool) -> np.ndarray:
    """Centred orthonormal 1-D (i)FFT along the rows (axis -2) of complex data."""
    shifted = np.fft.ifftshift(data, axes=-2)
    out = np.fft.ifft(shifted, axis=-2, norm="ortho") if inverse else np.fft.fft(shifted, axis=-2, norm="ortho")
    return np.fft.fftshift(out, axes=-2)


def crop_readout(
    kspace: np.ndarray, target: Optional[np.ndarray], rows: int, rng: np.random.Generator
) -> tuple[np.ndarray, Optional[np.ndarray], int]:
    """A random window of ``rows`` image rows (the fully sampled readout direction).

    The k-space rows are transformed to image space, ``rows`` adjacent rows are kept and
    transformed back, so the result is the exact k-space of the cropped coil images; the
    columns (phase encoding, where masks act) are untouched. The window lies inside the rows
    the target covers (centred, as fastMRI's targets), and the target is cut to match.

    Args:
        kspace: complex ``(..., H, W)``.
        target: ``(h, w)`` target or None.
        rows: window height (``<= h`` and ``<= H``).
        rng: draws the window position.

    Returns:
        ``(kspace (..., rows, W), target (rows, w) or None, first row in image space)``.
    """
    height = kspace.shape[-2]
    target_rows = target.shape[-2] if target is not None else height
    if rows > min(height, target_rows):
        raise ValueError(f"crop rows ({rows}) must not exceed the image height ({height}) or the target's ({target_rows})")
    offset = (height - target_rows) // 2 if target_rows < height else 0
    start = offset + int(rng.integers(0, min(height, target_rows) - rows + 1))
    hybrid = _centered_fft_rows(kspace, inverse=True)[..., start : start + rows, :]
    cropped = _centered_fft_rows(hybrid, inverse=False).astype(kspace.dtype, copy=False)
    cropped_target = None if target is None else target[..., start - offset : start - offset + rows, :]
    return np.ascontiguousarray(cropped), cropped_target, start


class SeededTrainTransform:
    """Training transform: a fresh but reproducible mask per (epoch, file, slice).

    Wraps :class:`recon.data.VarNetDataTransform` (k-space models) or
    :class:`recon.data.UnetDataTransform` (image models), drawing each mask with the seed
    ``(seed, epoch, *map(ord, fname), slice_num)``. With ``crop_rows`` (k-space models) each
    slice is first cut to a random window of that many rows along the fully sampled readout
    direction (:func:`crop_readout`, position drawn from the same seed): the phase-encoding
    direction and its undersampling stay whole, so the aliasing is the one of full images,
    and a step costs about ``H / crop_rows`` times less.

    Args:
        domain: ``"kspace"`` or ``"image"``.
        mask_func: a mask function ``(shape, offset, seed) -> (mask, num_low_frequencies)``.
        seed: the run's seed.
        challenge: ``"multicoil"`` or ``"singlecoil"`` (image models).
        crop_rows: readout window height for k-space models, or None for whole slices.
    """

    def __init__(
        self, domain: str, mask_func: Callable, seed: int, challenge: str = "multicoil", crop_rows: Optional[int] = None
    ) -> None:
        if domain not in ("kspace", "image"):
            raise ValueError(f"domain must be 'kspace' or 'image', got {domain!r}")
        if crop_rows is not None and (domain != "kspace" or not isinstance(crop_rows, int) or crop_rows < 8):
            raise ValueError(f"crop_rows must be None or an int >= 8 for k-space models, got {crop_rows!r} for {domain!r}")
        self.domain = domain
        self.mask_func = mask_func
        self.seed = int(seed)
        self.challenge = challenge
        self.crop_rows = crop_rows
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the masks of ``epoch`` (call before iterating; workers get a fresh copy)."""
        self.epoch = int(epoch)

    def sample_seed(self, fname: str, slice_num: int) -> tuple[int, ...]:
        """The mask seed of one sample in the current epoch."""
        return (self.seed, self.epoch, *volume_seed(fname), int(slice_num))

    def __call__(self, kspace: np.ndarray, mask, target, attrs: dict, fname: str, slice_num: int):
        seed = self.sample_seed(fname, slice_num)
        fixed = _FixedSeedMask(self.mask_func, seed)
        if self.crop_rows is not None:
            rng = np.random.default_rng(list(seed))
            kspace, target, _ = crop_readout(kspace, target, self.crop_rows, rng)
            width = kspace.shape[-1]
            attrs = {**attrs, "padding_left": 0, "padding_right": width, "recon_size": (self.crop_rows, width, 1)}
        if self.domain == "kspace":
            inner = VarNetDataTransform(mask_func=fixed, use_seed=True)
        else:
            inner = UnetDataTransform(self.challenge, mask_func=fixed, use_seed=True)
        return inner(kspace, mask, target, attrs, fname, slice_num)


def make_transform(
    model: str,
    *,
    train: bool,
    mask_type: str,
    center_fractions: Sequence[float],
    accelerations: Sequence[float],
    seed: int,
    challenge: str = "multicoil",
    crop_rows: Optional[int] = None,
) -> Callable:
    """The sample transform of a model family, for training (fresh seeded masks, optional
    readout crops) or evaluation (fastMRI's fixed per-volume masks, whole slices)."""
    domain = MODEL_SPECS[model].domain
    mask_func = create_mask_for_mask_type(mask_type, list(center_fractions), list(accelerations), seed=seed)
    if train:
        return SeededTrainTransform(domain, mask_func, seed, challenge, crop_rows)
    if domain == "kspace":
        return VarNetDataTransform(mask_func=mask_func, use_seed=True)
    return UnetDataTransform(challenge, mask_func=mask_func, use_seed=True)


def make_dataset(
    data: str | os.PathLike,
    transform: Callable,
    *,
    challenge: str = "multicoil",
    cache: Optional[str] = None,
    sample_rate: Optional[float] = None,
    seed: int = 0,
    check: Optional[str] = None,
    require_targets: bool = True,
) -> SliceDataset:
    """A :class:`recon.data.SliceDataset` over ``data`` (a path or ``"embedded:<split>"``).

    With ``check`` (the argument's name, e.g. ``"train_data"``) the folder is first checked
    by :func:`recon.data.check_training_folder` (no usable files, mixed challenges, missing
    targets when ``require_targets``), so a bad folder fails with one clear message.
    """
    root = resolve_data_path(data, challenge, cache)
    if check is not None:
        from recon.data.corpus import check_training_folder

        check_training_folder(root, challenge, require_targets=require_targets, name=f"{check} folder")
    return SliceDataset(root, challenge, transform, sample_rate=sample_rate, seed=seed)


def make_loader(
    dataset: SliceDataset,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    num_replicas: int = 1,
    rank: int = 0,
    num_workers: int = 0,
) -> tuple[DataLoader, VolumeSampler]:
    """A DataLoader with a :class:`recon.data.VolumeSampler` (whole volumes per process),
    the typed-sample collate, and an explicitly seeded generator (no global RNG)."""
    sampler = VolumeSampler(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed)
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_samples,
        generator=generator,
        persistent_workers=False,
    )
    return loader, sampler
