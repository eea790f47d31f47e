"""Fast, paired, seeded augmentation and MR artefact simulation in torch (CPU and GPU).

Transforms work on ``(C, H, W)`` slices and ``(C, D, H, W)`` volumes, on batches of them
(``batched=True``: ``(B, C, ...)``, one set of parameters per sample, one call), and on dicts of
images that share a spatial grid (``{"t1": ..., "flair": ..., "label": ..., "affine": A}``):
spatial transforms move every image the same way (labels nearest-neighbour), intensity and
artefact transforms touch images only. Random transforms draw from a ``torch.Generator`` and
return what they drew for :meth:`~Transform.replay`; :class:`Compose` fuses chains of affine and
elastic transforms into one interpolation.

Modules: :mod:`~recon.preprocess.augment.spatial`, :mod:`~recon.preprocess.augment.crop`,
:mod:`~recon.preprocess.augment.intensity`,
:mod:`~recon.preprocess.augment.artefacts`, :mod:`~recon.preprocess.augment.compose`.

Example:
    >>> import torch
    >>> from recon.preprocess.augment import Compose, RandomAffine, RandomElastic, RandomFlip, RicianNoise
    >>> t = Compose([RandomFlip(axes=0), RandomAffine(degrees=10, scales=0.1), RandomElastic(),
    ...              RicianNoise(snr=(20, 40))], labels=("label",))
    >>> sample = {"t1": torch.rand(1, 48, 56, 48), "label": torch.zeros(1, 48, 56, 48, dtype=torch.long)}
    >>> out = t(sample, generator=torch.Generator().manual_seed(0))
    >>> out["t1"].shape
    torch.Size([1, 48, 56, 48])
"""

from recon.preprocess.augment._base import Transform
from recon.preprocess.augment.artefacts import (
    Ghosting,
    Gibbs,
    Motion,
    RandomGhosting,
    RandomGibbs,
    RandomMotion,
    RandomSpike,
    Spike,
    Undersample,
    ghosting,
    gibbs_truncate,
    rigid_motion,
    spikes,
    undersample,
)
from recon.preprocess.augment.compose import AugmentedDataset, Compose, sample_generator
from recon.preprocess.augment.intensity import (
    BiasField,
    Gamma,
    GaussianNoise,
    MinMax,
    PercentileClip,
    RandomBiasField,
    RandomGamma,
    RicianNoise,
    ZScore,
    foreground_mean,
    gaussian_noise,
    noise_sigma,
    rician_noise,
)
from recon.preprocess.augment.crop import CenterCrop, Crop, Pad, RandomCrop
from recon.preprocess.augment.spatial import (
    Affine,
    Elastic,
    Flip,
    RandomAffine,
    RandomElastic,
    RandomFlip,
    affine_matrix,
)

__all__ = [
    "Transform", "Compose", "sample_generator", "AugmentedDataset",
    "Affine", "RandomAffine", "Elastic", "RandomElastic", "Flip", "RandomFlip",
    "Crop", "CenterCrop", "RandomCrop", "Pad", "affine_matrix",
    "GaussianNoise", "RicianNoise", "BiasField", "RandomBiasField", "Gamma", "RandomGamma",
    "PercentileClip", "ZScore", "MinMax", "gaussian_noise", "rician_noise", "noise_sigma", "foreground_mean",
    "Motion", "RandomMotion", "Ghosting", "RandomGhosting", "Spike", "RandomSpike", "Gibbs", "RandomGibbs",
    "Undersample", "rigid_motion", "ghosting", "spikes", "gibbs_truncate", "undersample",
]
