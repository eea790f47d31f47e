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

__all__ = ["resolve_data_path", "SeededTrainTransform", "make_transform", "make_dataset", "make_loader"]


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


class SeededTrainTransform:
    """Training transform: a fresh but reproducible mask per (epoch, file, slice).

    Wraps :class:`recon.data.VarNetDataTransform` (k-space models) or
    :class:`recon.data.UnetDataTransform` (image models), drawing each mask with the seed
    ``(seed, epoch, *map(ord, fname), slice_num)``.

    Args:
        domain: ``"kspace"`` or ``"image"``.
        mask_func: a mask function ``(shape, offset, seed) -> (mask, num_low_frequencies)``.
        seed: the run's seed.
        challenge: ``"multicoil"`` or ``"singlecoil"`` (image models).
    """

    def __init__(self, domain: str, mask_func: Callable, seed: int, challenge: str = "multicoil") -> None:
        if domain not in ("kspace", "image"):
            raise ValueError(f"domain must be 'kspace' or 'image', got {domain!r}")
        self.domain = domain
        self.mask_func = mask_func
        self.seed = int(seed)
        self.challenge = challenge
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the masks of ``epoch`` (call before iterating; workers get a fresh copy)."""
        self.epoch = int(epoch)

    def sample_seed(self, fname: str, slice_num: int) -> tuple[int, ...]:
        """The mask seed of one sample in the current epoch."""
        return (self.seed, self.epoch, *volume_seed(fname), int(slice_num))

    def __call__(self, kspace: np.ndarray, mask, target, attrs: dict, fname: str, slice_num: int):
        fixed = _FixedSeedMask(self.mask_func, self.sample_seed(fname, slice_num))
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
) -> Callable:
    """The sample transform of a model family, for training (fresh seeded masks) or
    evaluation (fastMRI's fixed per-volume masks)."""
    domain = MODEL_SPECS[model].domain
    mask_func = create_mask_for_mask_type(mask_type, list(center_fractions), list(accelerations), seed=seed)
    if train:
        return SeededTrainTransform(domain, mask_func, seed, challenge)
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
) -> SliceDataset:
    """A :class:`recon.data.SliceDataset` over ``data`` (a path or ``"embedded:<split>"``)."""
    root = resolve_data_path(data, challenge, cache)
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
