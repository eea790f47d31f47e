"""Skull stripping by template registration: ``brain_mask(volume, affine)``.

The template (``data/templates/``, built by ``scripts/make_templates.py`` from the MNI ICBM152
2009a template inside nilearn's wheel; see ``data/README.md`` for the licence) is a 2 mm T1 and a
brain probability map. It is registered (affine, Mattes mutual information, so any contrast
works) to the subject, its brain map is warped onto the subject grid (linear, thresholded at
0.5), and the mask is refined with morphology: holes filled, a small opening, the largest
connected component kept.

The template is found by :func:`data_dir` (``$RECON_DATA_DIR`` if set, else ``data/`` at the
repository root), which lives here because this layer may not import :mod:`recon.data`; the data
layer uses the same function (``recon.data.data_dir``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from recon.preprocess._checks import as_affine, as_volume, describe

__all__ = ["BrainTemplate", "default_template", "brain_mask", "TEMPLATE_FILES"]

#: file names of the bundled template in ``data/templates/``
TEMPLATE_FILES = {"t1": "mni152_2009a_t1_2mm.nii.gz", "brain": "mni152_2009a_brain_2mm.nii.gz"}


@dataclass(frozen=True)
class BrainTemplate:
    """A brain template: an image, its brain probability map (same grid) and their affine.

    Attributes:
        image: (X, Y, Z) float32 template image (e.g. a T1).
        brain: (X, Y, Z) float32 brain probability in [0, 1].
        affine: 4x4 voxel-to-world affine (RAS+) of both.
    """

    image: np.ndarray
    brain: np.ndarray
    affine: np.ndarray


def data_dir() -> Path:
    """The embedded data folder: ``$RECON_DATA_DIR`` or ``data/`` at the repository root
    (also :func:`recon.data.data_dir`)."""
    env = os.environ.get("RECON_DATA_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "data"
    if not path.is_dir():
        raise FileNotFoundError(
            f"embedded data folder not found at {str(path)!r}; set RECON_DATA_DIR to the repository's data/ folder"
        )
    return path


def default_template() -> BrainTemplate:
    """The bundled MNI ICBM152 2009a template (2 mm T1 and brain probability)."""
    import nibabel as nib

    folder = data_dir() / "templates"
    paths = {key: folder / name for key, name in TEMPLATE_FILES.items()}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"brain template not found: {missing}; rebuild it with `python scripts/make_templates.py` "
            "or set RECON_DATA_DIR to the repository's data/ folder"
        )
    t1 = nib.load(paths["t1"])
    brain = nib.load(paths["brain"])
    return BrainTemplate(
        image=np.asarray(t1.dataobj, dtype=np.float32),
        brain=np.asarray(brain.dataobj, dtype=np.float32) / 255.0,
        affine=np.asarray(t1.affine, dtype=np.float64),
    )


def _largest_component(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    labels, n = ndimage.label(mask)
    if n <= 1:
        return mask
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (1 + int(np.argmax(sizes)))


def brain_mask(volume: np.ndarray | torch.Tensor, affine: np.ndarray, *, template: BrainTemplate | None = None,
               transform: str = "affine", refine: bool = True, threshold: float = 0.5, seed: int = 0,
               initialize: str = "geometry", margin_mm: float = 6.0, return_probability: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Boolean brain mask of a head MR volume by registering a brain template to it.

    Args:
        volume: (X, Y, Z) head image (T1-weighted works best; MI makes other contrasts possible).
        affine: its 4x4 voxel-to-world affine (RAS+, mm): the template is placed by it, so it
            must be a real scanner/world affine (wrong voxel sizes give wrong masks).
        template: a :class:`BrainTemplate` (default: :func:`default_template`).
        transform: ``"affine"`` (default) or ``"bspline"`` (affine then a coarse B-spline;
            slower, follows the cortex more closely) or ``"rigid"``.
        refine: fill holes, open by one voxel and keep the largest connected component.
        threshold: level of the warped brain probability that makes the mask, in (0, 1).
        seed: seed of the registration's metric sampling (deterministic result).
        initialize: ``"geometry"`` (align the grids' centres; robust when the head fills the
            field of view) or ``"moments"`` (centres of mass).
        margin_mm: the metric counts only points within this distance of the template's brain.
        return_probability: also return the warped brain probability (float32).

    Returns:
        Boolean (X, Y, Z) mask (and the probability map if ``return_probability``).

    Raises:
        ValueError: volume not 3-D, affine not 4x4 invertible, bad threshold/transform,
            registration failure.
        FileNotFoundError: the bundled template is missing.
        ImportError: SimpleITK missing (``pip install 'recon[preprocess]'``).

    Example:
        >>> mask = brain_mask(t1, t1_affine)            # doctest: +SKIP
        >>> brain = np.where(mask, t1, 0)               # doctest: +SKIP
    """
    from scipy import ndimage

    from recon.preprocess.register import register

    data = as_volume("volume", volume, dtype=np.float32)
    affine = as_affine("affine", affine)
    if not 0.0 < float(threshold) < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    if transform not in ("rigid", "affine", "bspline"):
        raise ValueError(f"transform must be 'rigid', 'affine' or 'bspline', got {transform!r}")
    if template is None:
        template = default_template()
    elif not isinstance(template, BrainTemplate):
        raise TypeError(f"template must be a BrainTemplate or None, got {describe(template)}")
    # registration on a coarse pyramid: a 2 mm template needs no finer than ~2 mm subject
    spacing = float(np.min(np.linalg.norm(affine[:3, :3], axis=0)))
    fine = max(1, int(round(2.0 / spacing)))
    # the template is skull-stripped: count only points that land in (a margin around) its brain,
    # otherwise the template brain stretches over the subject's scalp
    template_spacing = float(np.min(np.linalg.norm(template.affine[:3, :3], axis=0)))
    margin = max(1, int(round(margin_mm / template_spacing)))
    moving_mask = ndimage.binary_dilation(template.brain > 0.5, iterations=margin)
    result = register(
        data, template.image, fixed_affine=affine, moving_affine=template.affine, transform=transform,
        metric="mutual_information", seed=seed, moving_mask=moving_mask,
        shrink_factors=(4 * fine, 2 * fine, fine), smoothing_sigmas=(4.0, 2.0, 1.0),
        n_iterations=100, initialize=initialize,
    )
    prob = result.apply(template.brain, order=1, affine=template.affine)
    mask = prob > float(threshold)
    if refine and mask.any():
        mask = ndimage.binary_fill_holes(mask)
        mask = ndimage.binary_opening(mask, structure=ndimage.generate_binary_structure(3, 1))
        mask = _largest_component(mask)
    if return_probability:
        return mask, prob.astype(np.float32)
    return mask
