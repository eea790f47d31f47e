"""`recon synthesize|denoise|superres` on a reconstruction .h5: its display-oriented slices are
turned back to the array order the heads' networks were trained on (and the demo writes)."""
from __future__ import annotations

import h5py
import numpy as np

from recon.cli import _read_image
from recon.data.simulate import nifti_slices


def _write_reconstruction(path, images):
    with h5py.File(path, "w") as hf:
        hf.create_dataset("reconstruction", data=images)


def test_a_reconstruction_comes_back_in_the_volume_order_it_was_cut_from(tmp_path):
    volume = np.random.default_rng(0).random((12, 9, 5)).astype(np.float32)  # (X, Y, Z), X != Y
    _write_reconstruction(tmp_path / "rec.h5", nifti_slices(volume, axis=2))  # (Z, Y, X) displayed
    out, affine, from_h5 = _read_image(tmp_path / "rec.h5")
    assert from_h5 and affine is None
    np.testing.assert_array_equal(out, volume)


def test_the_order_matches_the_demo_nifti_and_a_single_slice(tmp_path):
    images = np.random.default_rng(1).random((3, 7, 10)).astype(np.float32)  # (slices, H, W) displayed
    _write_reconstruction(tmp_path / "rec.h5", images)
    out, _, _ = _read_image(tmp_path / "rec.h5")
    # examples/demo.py writes out.nii.gz as transpose (2, 1, 0) with the second axis reversed
    np.testing.assert_array_equal(out, np.transpose(images, (2, 1, 0))[:, ::-1, :])
    _write_reconstruction(tmp_path / "one.h5", images[0])
    one, _, _ = _read_image(tmp_path / "one.h5")
    np.testing.assert_array_equal(one, images[0].T[:, ::-1])
