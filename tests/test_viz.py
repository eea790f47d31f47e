"""show_mid_slices: planes, orientation and aspect checked on a marker at a known world place."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
import torch

from recon.viz import show_mid_slices

# A 1 x 2 x 3 mm volume stored LAS (x flipped), as a DICOM conversion writes it.
SHAPE = (20, 16, 10)
VOXEL = (1.0, 2.0, 3.0)


def las_affine() -> np.ndarray:
    affine = np.diag([-VOXEL[0], VOXEL[1], VOXEL[2], 1.0])
    affine[:3, 3] = [10.0, -16.0, -15.0]
    return affine


def marker_volume() -> np.ndarray:
    """Zeros with a bright cube on the patient's right, anterior, superior side (stored LAS)."""
    volume = np.zeros(SHAPE, dtype=np.float32)
    # LAS: stored i increases to the patient's left, so the right side is small i
    volume[2:5, 11:14, 6:9] = 100.0
    volume[10, 8, 5] = 1.0  # something at the centre for the window
    return volume


def bright_spot(ax) -> tuple[float, float]:
    """Where (fraction of width from the left, of height from the bottom) the marker appears."""
    image = np.asarray(ax.images[0].get_array())
    rows, cols = np.nonzero(image > 50)
    return (cols.mean() + 0.5) / image.shape[1], (rows.mean() + 0.5) / image.shape[0]


def test_panels_orientation_and_aspect():
    fig = show_mid_slices(marker_volume(), las_affine(), index=(16, 12, 7), title="marker")
    assert [ax.get_title() for ax in fig.axes] == ["sagittal", "coronal", "axial"]
    assert "radiological" in fig._suptitle.get_text() and "marker" in fig._suptitle.get_text()
    sag, cor, axi = fig.axes
    # extents in mm: width and height follow the voxel sizes of the affine
    assert sag.images[0].get_extent() == [0, SHAPE[1] * 2.0, 0, SHAPE[2] * 3.0]
    assert cor.images[0].get_extent() == [0, SHAPE[0] * 1.0, 0, SHAPE[2] * 3.0]
    assert axi.images[0].get_extent() == [0, SHAPE[0] * 1.0, 0, SHAPE[1] * 2.0]
    # the marker is anterior (left in sagittal) and superior (top) ...
    x, y = bright_spot(sag)
    assert x < 0.5 and y > 0.5
    # ... on the patient's right: viewer's left in radiological coronal and axial, anterior up
    x, y = bright_spot(cor)
    assert x < 0.5 and y > 0.5
    x, y = bright_spot(axi)
    assert x < 0.5 and y > 0.5


def test_neurological_puts_right_on_the_right():
    fig = show_mid_slices(marker_volume(), las_affine(), index=(16, 12, 7), convention="neurological")
    assert bright_spot(fig.axes[1])[0] > 0.5 and bright_spot(fig.axes[2])[0] > 0.5
    assert "neurological" in fig._suptitle.get_text()


def test_panel_values_against_numpy():
    rng = np.random.default_rng(0)
    volume = rng.random(SHAPE)
    fig = show_mid_slices(torch.from_numpy(volume).unsqueeze(0), np.diag([*VOXEL, 1.0]))  # RAS storage
    i, j, k = (n // 2 for n in SHAPE)
    sag, cor, axi = (np.asarray(ax.images[0].get_array()) for ax in fig.axes)
    np.testing.assert_array_equal(sag, volume[i, ::-1, :].T)  # anterior left, superior up
    np.testing.assert_array_equal(cor, volume[::-1, j, :].T)  # radiological: right on the left
    np.testing.assert_array_equal(axi, volume[::-1, :, k].T)
    lo, hi = np.percentile(volume, [0.5, 99.5])
    assert fig.axes[0].images[0].get_clim() == pytest.approx((lo, hi))


def test_png_written_atomically_and_no_global_state(tmp_path):
    import matplotlib.pyplot as plt

    backend, figures, rc = matplotlib.get_backend(), plt.get_fignums(), dict(matplotlib.rcParams)
    out = tmp_path / "planes.png"
    show_mid_slices(marker_volume(), las_affine(), path=out, crosshair=True)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["planes.png"]
    assert matplotlib.image.imread(out).shape[2] in (3, 4)
    assert matplotlib.get_backend() == backend and plt.get_fignums() == figures and dict(matplotlib.rcParams) == rc


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((np.zeros((4, 4)),), {}, ValueError, r"volume must be \(X, Y, Z\) or \(1, X, Y, Z\), got shape \(4, 4\)"),
        ((np.zeros((2, 4, 4, 4)),), {}, ValueError, r"volume must be .* got shape \(2, 4, 4, 4\)"),
        ((np.zeros((4, 4, 4), complex),), {}, TypeError, r"volume must be real"),
        (([1, 2, 3],), {}, TypeError, r"volume must be a numpy array or torch tensor, got list"),
        ((np.zeros((4, 4, 4)), np.zeros((4, 4))), {}, ValueError, r"affine must be invertible"),
        ((np.zeros((4, 4, 4)), np.eye(3)), {}, ValueError, r"affine must be a finite 4x4 matrix, got shape \(3, 3\)"),
        ((np.zeros((4, 4, 4)),), {"convention": "lr"}, ValueError, r"convention must be 'radiological' or 'neurological', got 'lr'"),
        ((np.zeros((4, 4, 4)),), {"index": (9, 0, 0)}, ValueError, r"index must lie inside the \(RAS\) volume of shape \(4, 4, 4\)"),
        ((np.zeros((4, 4, 4)),), {"percentiles": (90, 10)}, ValueError, r"percentiles must satisfy"),
        ((np.zeros((4, 4, 4)),), {"path": "x.jpg"}, ValueError, r"path must end in \.png, got 'x\.jpg'"),
        ((np.zeros((4, 4, 4)),), {"path": "/nonexistent/dir/x.png"}, FileNotFoundError, r"folder of path '/nonexistent/dir' does not exist"),
    ],
)
def test_bad_input(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        show_mid_slices(*args, **kwargs)
