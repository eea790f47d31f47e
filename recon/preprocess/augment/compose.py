"""Chains of transforms with one resampling, and seeding that does not depend on workers.

:class:`Compose` runs transforms in order; every run of consecutive affine/elastic transforms
(:class:`~recon.preprocess.augment.Affine`, :class:`~recon.preprocess.augment.RandomAffine`,
:class:`~recon.preprocess.augment.Elastic`, :class:`~recon.preprocess.augment.RandomElastic`)
is fused into one sampling grid, so each image is interpolated once however long the chain. The
random parameters are drawn in the order of the transforms, exactly as if each ran on its own.

Reproducibility across DataLoader workers: seed per *sample index*, not per worker.
:func:`sample_generator` derives a generator from ``(seed, index, epoch)``;
:class:`AugmentedDataset` wraps a dataset so that item ``i`` is always augmented with
``sample_generator(seed, i, epoch)``: the same output with 0, 2 or 16 workers.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import torch

from recon.preprocess.augment._base import Batch, Params, Transform, check_params, check_positive_int, describe
from recon.preprocess.augment._resampling import _check_backend, _resample
from recon.preprocess.augment.spatial import GridTransform

__all__ = ["Compose", "sample_generator", "AugmentedDataset"]


class Compose(Transform):
    """Apply ``transforms`` in order, fusing consecutive affine/elastic ones into one grid.

    Args:
        transforms: the transforms (any :class:`Transform`, including nested ``Compose``).
        labels: keys of a dict sample that hold label maps: spatial transforms use
            nearest-neighbour on them, intensity and artefact transforms leave them alone. The
            children's own ``labels`` are not consulted inside a ``Compose``.

        backend: how fused runs are resampled (default: the first transform's ``backend``):
            ``"grid_sample"`` builds the sampling grid with one matrix product and calls
            :func:`torch.nn.functional.grid_sample` (any device, any mode); ``"compiled"`` (3-D,
            linear/nearest, zero padding; else it falls back) computes each voxel's sampling
            point inside one ``torch.compile``-d loop without building the grid - about twice as
            fast on a CPU, after a compilation of seconds on the first call of a process.

    A fused run interpolates with the first transform's ``interpolation`` and ``padding_mode``.
    The parameters returned with ``return_params=True`` are a list, one entry per transform.

    Example:
        >>> from recon.preprocess.augment import RandomAffine, RandomElastic, RandomFlip, RandomGamma
        >>> t = Compose([RandomFlip(axes=(0,)), RandomAffine(degrees=10), RandomElastic(),
        ...              RandomGamma()], labels=("label",))
        >>> sample = {"t1": torch.rand(1, 40, 48, 40), "label": torch.zeros(1, 40, 48, 40, dtype=torch.long)}
        >>> out, params = t(sample, generator=torch.Generator().manual_seed(0), return_params=True)
        >>> all(torch.equal(a, b) for a, b in zip(t.replay(sample, params).values(), out.values()))
        True
    """

    def __init__(self, transforms: Sequence[Transform], *, labels: Iterable[str] = (), backend: str | None = None) -> None:
        super().__init__(labels=labels)
        self.backend = None if backend is None else _check_backend(backend)
        if isinstance(transforms, Transform) or not isinstance(transforms, (list, tuple)):
            raise TypeError(f"transforms must be a list of transforms, got {describe(transforms)}")
        for i, t in enumerate(transforms):
            if not isinstance(t, Transform):
                raise TypeError(f"transforms[{i}] must be a recon.preprocess.augment transform, got {describe(t)}")
        self.transforms = list(transforms)
        self.random = any(t.random for t in self.transforms)

    def _groups(self) -> list[list[int]]:
        groups: list[list[int]] = []
        for i, t in enumerate(self.transforms):
            if isinstance(t, GridTransform) and groups and isinstance(self.transforms[groups[-1][0]], GridTransform):
                groups[-1].append(i)
            else:
                groups.append([i])
        return groups

    def _execute(self, batch: Batch, generator: torch.Generator | None, given: list | None) -> tuple[Batch, list]:
        params: list = [None] * len(self.transforms)
        for group in self._groups():
            first = self.transforms[group[0]]
            if isinstance(first, GridTransform):
                ops = []
                for i in group:
                    t = self.transforms[i]
                    if given is None:
                        p = t.draw(batch, generator)
                    else:
                        p = check_params(given[i], t.param_keys(), batch.batch_size, type(t).__name__)
                        p = {k: v.to(batch.device) for k, v in p.items()}
                    params[i] = p
                    ops.append(t.grid_op(batch, p))
                backend = self.backend if self.backend is not None else first.backend
                batch = _resample(batch, ops, first.interpolation, first.padding_mode, backend)
            else:
                i = group[0]
                if given is None:
                    batch, params[i] = first._run(batch, generator)
                else:
                    batch = first._replay(batch, given[i])
                    params[i] = given[i]
        return batch, params

    def _run(self, batch: Batch, generator: torch.Generator | None) -> tuple[Batch, list]:
        return self._execute(batch, generator, None)

    def _replay(self, batch: Batch, params: Params) -> Batch:
        if not isinstance(params, (list, tuple)) or len(params) != len(self.transforms):
            raise ValueError(
                f"params for Compose must be the list of {len(self.transforms)} entries it returned, got {describe(params)}"
            )
        return self._execute(batch, None, list(params))[0]

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"Compose([{inner}], labels={self.labels!r})"


_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def sample_generator(seed: int, index: int, epoch: int = 0, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator for sample ``index`` of ``epoch``, independent of workers and of call order.

    The seed is ``splitmix64`` mixed from ``(seed, epoch, index)``, so neighbouring indices get
    unrelated streams.

    Args:
        seed: the experiment's seed (int >= 0).
        index: the sample's index in the dataset (int >= 0).
        epoch: the epoch (int >= 0): each epoch augments differently.
        device: the generator's device (the data's).

    Example:
        >>> g = sample_generator(1234, index=7, epoch=0)
        >>> float(torch.rand(1, generator=g)) == float(torch.rand(1, generator=sample_generator(1234, 7)))
        True
    """
    for name, v in (("seed", seed), ("index", index), ("epoch", epoch)):
        check_positive_int(name, v, minimum=0)
    mixed = _splitmix64(_splitmix64(_splitmix64(int(seed)) ^ int(epoch)) ^ int(index))
    return torch.Generator(device=device).manual_seed(mixed & ((1 << 63) - 1))


class AugmentedDataset(torch.utils.data.Dataset):
    """Wrap a map-style dataset: item ``i`` is ``transform(dataset[i], generator=sample_generator(seed, i, epoch))``.

    The result depends only on ``(seed, epoch, i)``, never on the number of DataLoader workers
    or on which worker loads the item. Call :meth:`set_epoch` before each epoch (with
    ``persistent_workers=True`` the workers keep the epoch of their start; recreate the loader).

    Args:
        dataset: map-style dataset returning a sample (tensor or dict of tensors).
        transform: any transform of this module (usually a :class:`Compose`).
        seed: experiment seed.
    """

    def __init__(self, dataset: Any, transform: Callable, seed: int, *, batched: bool = False) -> None:
        if not isinstance(transform, Transform):
            raise TypeError(f"transform must be a recon.preprocess.augment transform, got {describe(transform)}")
        check_positive_int("seed", seed, minimum=0)
        self.dataset, self.transform, self.seed, self.batched = dataset, transform, int(seed), batched
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = check_positive_int("epoch", epoch, minimum=0)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        sample = self.dataset[index]
        return self.transform(sample, generator=sample_generator(self.seed, int(index), self.epoch), batched=self.batched)
