"""Look at the data: the three orthogonal mid planes of a volume, with the right aspect.

Figures are made with :class:`matplotlib.figure.Figure` directly (no ``pyplot``): nothing
touches matplotlib's global state (backend, current figure, rcParams), so this works in
scripts, servers, notebooks and DataLoader workers alike. PNG files are written atomically.

Example:
    >>> import numpy as np
    >>> from recon.viz import show_mid_slices
    >>> volume = np.random.default_rng(0).random((64, 80, 48))
    >>> fig = show_mid_slices(volume, np.diag([1.0, 1.0, 2.5, 1.0]))
    >>> [ax.get_title() for ax in fig.axes]
    ['sagittal', 'coronal', 'axial']
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["show_mid_slices", "canonical_view"]

_CONVENTIONS = ("radiological", "neurological")


def _as_volume(volume: object) -> np.ndarray:
    try:
        import torch

        if isinstance(volume, torch.Tensor):
            volume = volume.detach().cpu().numpy()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if not isinstance(volume, np.ndarray):
        raise TypeError(f"volume must be a numpy array or torch tensor, got {type(volume).__name__}")
    if np.iscomplexobj(volume):
        raise TypeError(f"volume must be real (show the magnitude), got {volume.dtype} array")
    if volume.ndim == 4 and volume.shape[0] == 1:
        volume = volume[0]
    if volume.ndim != 3 or 0 in volume.shape:
        raise ValueError(f"volume must be (X, Y, Z) or (1, X, Y, Z), got shape {volume.shape}")
    return volume


def _check_affine(affine: object) -> np.ndarray:
    if affine is None:
        return np.eye(4)
    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (4, 4) or not np.all(np.isfinite(a)):
        raise ValueError(f"affine must be a finite 4x4 matrix, got shape {a.shape}")
    if abs(np.linalg.det(a[:3, :3])) < 1e-12:
        raise ValueError("affine must be invertible (its 3x3 part has zero determinant)")
    return a


def canonical_view(volume: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Permute and flip the axes to the closest RAS+ order; return the array and voxel sizes (mm).

    Each voxel axis goes to the world axis its direction is closest to (nibabel's
    ``io_orientation``); for an oblique volume the planes shown are the voxel planes nearest
    to the anatomical ones.
    """
    import nibabel.orientations as nio

    ornt = nio.io_orientation(affine)
    canonical = nio.apply_orientation(volume, ornt)
    sizes = np.linalg.norm(affine[:3, :3], axis=0)
    voxel = np.empty(3)
    for axis, (world, _) in enumerate(ornt):
        voxel[int(world)] = sizes[axis]
    return canonical, voxel


def _save_png(fig, path: Path, dpi: int) -> None:
    """Write the figure as PNG through a hidden temporary in the same folder, then rename."""
    tmp = path.with_name(f".{path.name[:150]}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        with open(tmp, "xb") as f:
            fig.savefig(f, format="png", dpi=dpi)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def show_mid_slices(
    volume: object,
    affine: object = None,
    path: str | os.PathLike | None = None,
    title: str | None = None,
    *,
    index: Sequence[int] | None = None,
    convention: str = "radiological",
    cmap: str = "gray",
    vmin: float | None = None,
    vmax: float | None = None,
    percentiles: tuple[float, float] = (0.5, 99.5),
    crosshair: bool = False,
    figsize: tuple[float, float] | None = None,
    dpi: int = 100,
):
    """Draw the sagittal, coronal and axial planes through the middle of a volume.

    The volume is first brought to the closest RAS+ order using ``affine`` (so the planes are
    anatomical whatever the storage order, e.g. the LAS of a DICOM conversion), and each panel
    is drawn in millimetres, so its aspect follows the voxel sizes of the affine (a 1 x 1 x 3 mm
    volume does not look squashed). Orientation: superior is up in sagittal and coronal views,
    anterior up in the axial view; anterior is on the left of the sagittal view; the patient's
    right is on the viewer's left in coronal and axial views for the ``"radiological"``
    convention, on the right for ``"neurological"``. Each panel carries its side letters and
    the title states the convention.

    Args:
        volume: ``(X, Y, Z)`` (or ``(1, X, Y, Z)``) real array or tensor.
        affine: 4x4 voxel-to-world (RAS+, mm) matrix as nibabel's; None: 1 mm voxels, RAS order.
        path: if given, the figure is saved there as PNG (atomically; the folder must exist).
        title: figure title (the convention is appended).
        index: voxel ``(i, j, k)`` of the canonical (RAS) array where the planes cross;
            default the middle ``shape // 2``.
        convention: ``"radiological"`` or ``"neurological"``.
        cmap: matplotlib colour map.
        vmin, vmax: display window; default the ``percentiles`` of the volume.
        percentiles: low/high percentiles for the default window.
        crosshair: draw where the other two planes cut each panel.
        figsize: figure size in inches; default from the field of view.
        dpi: resolution of the saved PNG.

    Returns:
        The :class:`matplotlib.figure.Figure` (axes titled ``sagittal``, ``coronal``, ``axial``).

    Raises:
        TypeError: volume not a real array/tensor.
        ValueError: wrong shape, affine not an invertible 4x4, index outside the volume, bad
            ``convention``/``percentiles``, or ``path`` not ending in ``.png``.
        FileNotFoundError: the folder of ``path`` does not exist.
    """
    from matplotlib.figure import Figure

    data = _as_volume(volume)
    matrix = _check_affine(affine)
    if convention not in _CONVENTIONS:
        raise ValueError(f"convention must be 'radiological' or 'neurological', got {convention!r}")
    try:
        low_p, high_p = (float(p) for p in percentiles)
    except (TypeError, ValueError) as err:
        raise ValueError(f"percentiles must be two numbers (low, high), got {percentiles!r}") from err
    if not 0 <= low_p < high_p <= 100:
        raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {percentiles!r}")
    if path is not None:
        path = Path(path)
        if path.suffix.lower() != ".png":
            raise ValueError(f"path must end in .png, got {str(path)!r}")
        if not path.parent.is_dir():
            raise FileNotFoundError(f"folder of path {str(path.parent)!r} does not exist")
    ras, (dx, dy, dz) = canonical_view(data, matrix)
    ras = np.asarray(ras, dtype=np.float64)
    nx, ny, nz = ras.shape
    if index is None:
        i, j, k = nx // 2, ny // 2, nz // 2
    else:
        try:
            i, j, k = (int(v) for v in index)
        except (TypeError, ValueError) as err:
            raise ValueError(f"index must be 3 voxel indices (i, j, k), got {index!r}") from err
        if not (0 <= i < nx and 0 <= j < ny and 0 <= k < nz):
            raise ValueError(f"index must lie inside the (RAS) volume of shape {ras.shape}, got {index!r}")
    finite = ras[np.isfinite(ras)]
    lo, hi = (np.percentile(finite, [low_p, high_p]) if finite.size else (0.0, 1.0))
    vmin = float(lo) if vmin is None else float(vmin)
    vmax = float(hi) if vmax is None else float(vmax)
    if not vmax > vmin:
        vmax = vmin + 1.0

    radiological = convention == "radiological"
    # Each panel: 2-D image with rows = vertical (bottom to top), columns = horizontal (left to
    # right on screen), its extent in mm, the side letters (left, right, bottom, top).
    sagittal = ras[i, ::-1, :].T  # columns: anterior on the left; rows: inferior -> superior
    coronal = ras[::-1, j, :].T if radiological else ras[:, j, :].T
    axial = ras[::-1, :, k].T if radiological else ras[:, :, k].T
    lr = ("R", "L") if radiological else ("L", "R")
    panels = [
        ("sagittal", sagittal, (ny * dy, nz * dz), ("A", "P", "I", "S"), (ny - 1 - j, k), (dy, dz)),
        ("coronal", coronal, (nx * dx, nz * dz), (*lr, "I", "S"), ((nx - 1 - i) if radiological else i, k), (dx, dz)),
        ("axial", axial, (nx * dx, ny * dy), (*lr, "P", "A"), ((nx - 1 - i) if radiological else i, j), (dx, dy)),
    ]
    widths = [p[2][0] for p in panels]
    height = max(p[2][1] for p in panels)
    if figsize is None:
        figsize = (min(16.0, 2.0 + 10.0 * sum(widths) / max(sum(widths), height * 3)), 4.2)
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": widths})
    for ax, (name, image, (width, tall), (left, right, bottom, top), (ch, cv), (sh, sv)) in zip(axes, panels):
        ax.imshow(image, cmap=cmap, vmin=vmin, vmax=vmax, origin="lower", extent=(0, width, 0, tall),
                  interpolation="nearest", aspect="equal")
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
        style = {"color": "yellow", "fontsize": 9, "fontweight": "bold"}
        ax.text(0.02, 0.5, left, transform=ax.transAxes, ha="left", va="center", **style)
        ax.text(0.98, 0.5, right, transform=ax.transAxes, ha="right", va="center", **style)
        ax.text(0.5, 0.02, bottom, transform=ax.transAxes, ha="center", va="bottom", **style)
        ax.text(0.5, 0.98, top, transform=ax.transAxes, ha="center", va="top", **style)
        if crosshair:
            ax.axvline((ch + 0.5) * sh, color="red", lw=0.6, alpha=0.7)
            ax.axhline((cv + 0.5) * sv, color="red", lw=0.6, alpha=0.7)
    side = "patient's right on the viewer's left" if radiological else "patient's right on the viewer's right"
    heading = f"{convention} ({side}); voxel {dx:.3g} x {dy:.3g} x {dz:.3g} mm"
    fig.suptitle(f"{title}\n{heading}" if title else heading, fontsize=10)
    if path is not None:
        _save_png(fig, path, dpi)
    return fig
