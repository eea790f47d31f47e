"""save_reconstructions, fastMRI-schema writing, NIfTI I/O and the ISMRMRD header."""

from __future__ import annotations

import xml.etree.ElementTree as etree

import h5py
import nibabel as nib
import numpy as np
import pytest
import torch

try:  # only the fastMRI parity tests need the fastmri package; the rest run without it
    import fastmri
    import fastmri.data as fastmri_data
    from fastmri.data.mri_data import et_query
except ImportError:
    fastmri = fastmri_data = et_query = None
needs_fastmri = pytest.mark.skipif(fastmri_data is None, reason="fastMRI parity test: needs the fastmri package")
from fastmri_files import header
from recon.data import (
    HeaderError,
    SliceDataset,
    load_nifti,
    make_ismrmrd_header,
    parse_ismrmrd_header,
    save_nifti,
    save_reconstructions,
    write_fastmri_file,
)
import recon.data.io as recon_io


@needs_fastmri
def test_save_reconstructions_matches_fastmri(tmp_path):
    rng = np.random.default_rng(0)
    recons = {"file_a.h5": rng.random((3, 16, 12)).astype(np.float32), "file_b.h5": rng.random((2, 8, 8))}
    theirs = tmp_path / "theirs"
    fastmri.save_reconstructions({k: v.astype(np.float32) for k, v in recons.items()}, theirs)
    paths = save_reconstructions(
        {"file_a.h5": recons["file_a.h5"], "file_b.h5": torch.from_numpy(recons["file_b.h5"])}, tmp_path / "ours" / "deep"
    )
    assert [p.name for p in paths] == ["file_a.h5", "file_b.h5"]
    for name in recons:
        with h5py.File(tmp_path / "ours" / "deep" / name) as ours, h5py.File(theirs / name) as ref:
            assert list(ours.keys()) == list(ref.keys()) == ["reconstruction"]
            assert ours["reconstruction"].dtype == np.float32
            np.testing.assert_array_equal(ours["reconstruction"][()], ref["reconstruction"][()])
    assert sorted(p.name for p in (tmp_path / "ours" / "deep").iterdir()) == ["file_a.h5", "file_b.h5"]


def test_save_reconstructions_is_atomic(tmp_path, monkeypatch):
    out = tmp_path / "out"
    save_reconstructions({"keep.h5": np.ones((1, 4, 4), np.float32)}, out)

    def broken(self, name, data=None, **kw):
        raise OSError("disk full")

    monkeypatch.setattr(h5py.Group, "create_dataset", broken)
    with pytest.raises(OSError, match="disk full"):
        save_reconstructions({"keep.h5": np.zeros((1, 4, 4), np.float32)}, out)
    monkeypatch.undo()
    assert [p.name for p in out.iterdir()] == ["keep.h5"]  # no temporary left, old file intact
    with h5py.File(out / "keep.h5") as hf:
        assert hf["reconstruction"][()].min() == 1.0


def test_save_reconstructions_errors(tmp_path):
    with pytest.raises(TypeError, match="reconstructions must be a dict of file name -> volume, got list"):
        save_reconstructions([np.zeros((1, 2, 2))], tmp_path)
    with pytest.raises(TypeError, match="keys must be file names"):
        save_reconstructions({3: np.zeros((1, 2, 2))}, tmp_path)
    with pytest.raises(ValueError, match="plain file names without folders, got '../x.h5'"):
        save_reconstructions({"../x.h5": np.zeros((1, 2, 2))}, tmp_path)
    with pytest.raises(ValueError, match=r"must be a \(slices, H, W\) volume, got shape \(2, 2\)"):
        save_reconstructions({"x.h5": np.zeros((2, 2))}, tmp_path)
    with pytest.raises(TypeError, match="must be a numpy array or torch.Tensor, got list"):
        save_reconstructions({"x.h5": [[[0.0]]]}, tmp_path)
    assert list(tmp_path.iterdir()) == []  # validation happens before anything is written


# -- NIfTI --------------------------------------------------------------------------------
def test_nifti_round_trip_with_voxel_size(tmp_path):
    vol = np.random.default_rng(1).random((5, 6, 7)).astype(np.float32)
    path = save_nifti(tmp_path / "v.nii.gz", vol, voxel_size=(0.5, 0.75, 3.0))
    img = nib.load(str(path))  # independent reader
    np.testing.assert_array_equal(np.asarray(img.dataobj), vol)
    assert img.header.get_zooms() == (0.5, 0.75, 3.0)
    np.testing.assert_allclose(np.sqrt((img.affine[:3, :3] ** 2).sum(0)), [0.5, 0.75, 3.0])
    # the volume's centre sits at the world origin
    np.testing.assert_allclose(img.affine @ [2, 2.5, 3, 1], [0, 0, 0, 1], atol=1e-12)
    assert img.header["qform_code"] == 1 and img.header["sform_code"] == 1
    data, affine, zooms = load_nifti(path)
    np.testing.assert_array_equal(data, vol)
    np.testing.assert_array_equal(affine, img.affine)
    assert zooms == (0.5, 0.75, 3.0)


def test_nifti_with_affine_keeps_zooms_consistent(tmp_path):
    affine = np.array([[0, 0, 2.0, -10], [-1.5, 0, 0, 5], [0, 1.0, 0, 3], [0, 0, 0, 1]])
    path = save_nifti(tmp_path / "v.nii", np.zeros((3, 4, 5), np.int16), affine=affine)
    img = nib.load(str(path))
    np.testing.assert_allclose(img.affine, affine)
    np.testing.assert_allclose(img.header.get_zooms(), (1.5, 1.0, 2.0))
    assert [p.name for p in tmp_path.iterdir()] == ["v.nii"]


def test_nifti_errors(tmp_path):
    with pytest.raises(ValueError, match="path must end in .nii or .nii.gz"):
        save_nifti(tmp_path / "v.h5", np.zeros((2, 2, 2)))
    with pytest.raises(TypeError, match="volume must be real"):
        save_nifti(tmp_path / "v.nii", np.zeros((2, 2, 2), np.complex64))
    with pytest.raises(ValueError, match=r"volume must be \(X, Y, Z\) or \(X, Y, Z, T\), got shape \(2, 2\)"):
        save_nifti(tmp_path / "v.nii", np.zeros((2, 2)))
    with pytest.raises(ValueError, match="voxel_size must be 3 positive numbers"):
        save_nifti(tmp_path / "v.nii", np.zeros((2, 2, 2)), voxel_size=(1, 0, 1))
    with pytest.raises(TypeError, match="voxel_size must be 3 positive numbers"):
        save_nifti(tmp_path / "v.nii", np.zeros((2, 2, 2)), voxel_size=1.0)
    with pytest.raises(ValueError, match="affine must be a finite 4x4 matrix"):
        save_nifti(tmp_path / "v.nii", np.zeros((2, 2, 2)), affine=np.eye(3))
    with pytest.raises(ValueError, match="affine must be invertible"):
        save_nifti(tmp_path / "v.nii", np.zeros((2, 2, 2)), affine=np.zeros((4, 4)))
    with pytest.raises(TypeError, match="volume must be a numpy array or torch.Tensor"):
        save_nifti(tmp_path / "v.nii", [[[1.0]]])
    with pytest.raises(FileNotFoundError, match="no NIfTI file"):
        load_nifti(tmp_path / "missing.nii")
    (tmp_path / "bad.nii.gz").write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="bad.nii.gz: cannot read as NIfTI"):
        load_nifti(tmp_path / "bad.nii.gz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.nii.gz"]


# -- ISMRMRD header -----------------------------------------------------------------------
def test_parse_header_matches_fastmri_on_a_published_style_header():
    xml = header(enc=(640, 368), rec=(320, 320), lim_center=170, lim_max=339)
    info = parse_ismrmrd_header(xml)
    assert info.encoding_size == (640, 368, 1) and info.recon_size == (320, 320, 1)
    # closed form: 368 // 2 - 170 = 14; 14 + 339 + 1 = 354
    assert (info.padding_left, info.padding_right) == (14, 354)


@needs_fastmri
def test_built_header_reads_back_with_fastmri_queries():
    xml = make_ismrmrd_header((640, 368), (320, 320), num_coils=15, num_slices=16, pe_limits=(0, 339, 170))
    root = etree.fromstring(xml)
    assert int(et_query(root, ["encoding", "encodedSpace", "matrixSize", "y"])) == 368
    assert int(et_query(root, ["encoding", "reconSpace", "matrixSize", "x"])) == 320
    assert int(et_query(root, ["encoding", "encodingLimits", "kspace_encoding_step_1", "center"])) == 170
    assert int(et_query(root, ["acquisitionSystemInformation", "receiverChannels"])) == 15
    info = parse_ismrmrd_header(xml)
    assert (info.padding_left, info.padding_right) == (14, 354)
    full = parse_ismrmrd_header(make_ismrmrd_header((32, 24), (16, 16), num_coils=1, num_slices=1))
    assert (full.padding_left, full.padding_right) == (0, 24)


def test_header_errors():
    with pytest.raises(HeaderError, match="not valid XML"):
        parse_ismrmrd_header(b"<a>")
    with pytest.raises(HeaderError, match="must be XML bytes or str, got int"):
        parse_ismrmrd_header(3)
    with pytest.raises(HeaderError, match="missing field encoding/reconSpace/matrixSize/x"):
        parse_ismrmrd_header(header().replace(b"<x>16</x>", b""))
    with pytest.raises(ValueError, match="encoding_size and recon_size must be positive"):
        make_ismrmrd_header((0, 24), (16, 16), num_coils=1, num_slices=1)
    with pytest.raises(ValueError, match="num_coils and num_slices must be >= 1"):
        make_ismrmrd_header((32, 24), (16, 16), num_coils=0, num_slices=1)
    with pytest.raises(ValueError, match="pe_limits must satisfy"):
        make_ismrmrd_header((32, 24), (16, 16), num_coils=1, num_slices=1, pe_limits=(5, 10, 2))


# -- fastMRI-schema writer ------------------------------------------------------------------
@needs_fastmri
def test_written_file_is_read_by_fastmri_and_recon(tmp_path):
    rng = np.random.default_rng(2)
    kspace = (rng.standard_normal((2, 3, 16, 12)) + 1j * rng.standard_normal((2, 3, 16, 12))).astype(np.complex64)
    target = rng.random((2, 8, 8)).astype(np.float32)
    hdr = make_ismrmrd_header((16, 12), (8, 8), num_coils=3, num_slices=2)
    folder = tmp_path / "d"
    folder.mkdir()
    write_fastmri_file(folder / "f.h5", kspace, hdr, reconstruction_rss=target,
                       attrs={"acquisition": "AXT1", "max": 1.0, "norm": 2.0, "patient_id": "p"})
    ref = fastmri_data.SliceDataset(folder, "multicoil")
    ours = SliceDataset(folder, "multicoil")
    for a, b in zip(ours, ref):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[2], b[2])
        assert a[3] == b[3]
    np.testing.assert_array_equal(ours[1][0], kspace[1])


def test_write_fastmri_file_errors(tmp_path):
    hdr = make_ismrmrd_header((16, 12), (8, 8), num_coils=3, num_slices=2)
    k = np.zeros((2, 3, 16, 12), np.complex64)
    with pytest.raises(TypeError, match="kspace must be a complex array, got float32"):
        write_fastmri_file(tmp_path / "f.h5", k.real.copy(), hdr)
    with pytest.raises(ValueError, match="kspace must be"):
        write_fastmri_file(tmp_path / "f.h5", k[0, 0], hdr)
    with pytest.raises(ValueError, match=r"reconstruction_rss must be \(2, h, w\)"):
        write_fastmri_file(tmp_path / "f.h5", k, hdr, reconstruction_rss=np.zeros((3, 8, 8)))
    with pytest.raises(ValueError, match=r"mask must have shape \(12,\)"):
        write_fastmri_file(tmp_path / "f.h5", k, hdr, mask=np.ones(5))
    with pytest.raises(HeaderError, match="missing field"):
        write_fastmri_file(tmp_path / "f.h5", k, b"<ismrmrdHeader/>")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_cleans_up(tmp_path):
    with pytest.raises(RuntimeError):
        with recon_io.atomic_path(tmp_path / "x.nii.gz") as tmp:
            # hidden, and no data suffix: no dataset glob or folder scan can match it
            assert tmp.name.startswith(".x.nii.gz.tmp-") and tmp.parent == tmp_path
            assert not tmp.name.endswith((".nii.gz", ".nii", ".h5")) and recon_io.is_temporary(tmp)
            tmp.write_text("partial")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_writes_get_umask_permissions(tmp_path):
    import os

    from recon.data import save_reconstructions

    (path,) = save_reconstructions({"vol.h5": np.zeros((1, 2, 2), np.float32)}, tmp_path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_save_npz_round_trip_creates_folder_and_leaves_no_temporary(tmp_path):
    from recon.data.io import save_npz

    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "m": np.array([True, False])}
    path = save_npz(tmp_path / "sub" / "cache.npz", arrays)
    with np.load(path) as z:
        assert sorted(z.files) == ["a", "m"]
        np.testing.assert_array_equal(z["a"], arrays["a"])
        np.testing.assert_array_equal(z["m"], arrays["m"])
    assert sorted(p.name for p in path.parent.iterdir()) == ["cache.npz"]
    with pytest.raises(TypeError):  # an unsaveable value: the old file stays, no temporary is left
        save_npz(path, {"a": np.zeros(2), "bad": object.__new__(type("Unpicklable", (), {"__reduce__": None}))})
    with np.load(path) as z:
        assert sorted(z.files) == ["a", "m"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["cache.npz"]
