"""DICOM series -> volume: against dicom2nifti, nibabel (the affine the files were written from)
and float64 numpy (stored values times slope plus intercept), in shuffled file order."""

from __future__ import annotations

import os
import random
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
nib = pytest.importorskip("nibabel")

from dicom_files import colin_block, geometry, rotation, stored_values, write_enhanced, write_series  # noqa: E402

from recon.data import dicom_to_nifti, read_dicom_series  # noqa: E402
from recon.data.dicom import AIR_HU, DicomSeriesError  # noqa: E402

PYDICOM_FILES = Path(os.path.dirname(pydicom.data.__file__)) / "test_files"
DICOMDIR_TESTS = PYDICOM_FILES / "dicomdirtests"
# The CT series in pydicom's wheel: 5 axial slices, instance numbers running against z, rescale -1024.
CT5N = DICOMDIR_TESTS / "98892001" / "CT5N"

GEOMETRIES = {
    "axial": geometry(),
    "axial-z-down": geometry(rot=np.diag([1.0, -1.0, -1.0])),
    "rotated-20-z": geometry(rot=rotation("z", 20)),
    "rotated-30-x-reversed": geometry(rot=rotation("x", 30) @ np.diag([1.0, 1.0, -1.0])),
    "sagittal": geometry(rot=np.array([[0.0, 0, 1], [1, 0, 0], [0, 1, 0]])),
    "coronal": geometry(rot=np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])),
    "oblique": geometry(rot=rotation("x", 25) @ rotation("y", -15) @ rotation("z", 40)),
}


def shuffled_copy(src: Path, dst: Path, seed: int) -> Path:
    """Copy the files of ``src`` to ``dst`` under random names, in a random order."""
    dst.mkdir(parents=True)
    files = sorted(p for p in src.iterdir() if p.is_file())
    random.Random(seed).shuffle(files)
    for i, f in enumerate(files):
        shutil.copy(f, dst / f"{random.Random(seed * 1000 + i).getrandbits(32):08x}")
    return dst


def dicom2nifti_reference(folder: Path, out: Path):
    d2n = pytest.importorskip("dicom2nifti")
    result = d2n.dicom_series_to_nifti(str(folder), str(out), reorient_nifti=True)
    return result["NII"], nib.load(str(out))


@pytest.fixture(scope="module")
def block() -> np.ndarray:
    return colin_block()


# --- pydicom's own CT series ------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pydicom_ct_series_equals_dicom2nifti(tmp_path, seed):
    folder = shuffled_copy(CT5N, tmp_path / "ct", seed)
    volume, affine, info = read_dicom_series(folder)
    memory, on_disk = dicom2nifti_reference(folder, tmp_path / "d2n.nii.gz")
    assert volume.dtype == np.float32 and volume.shape == (16, 16, 5)
    np.testing.assert_array_equal(volume, np.asarray(memory.dataobj).astype(np.float32))
    np.testing.assert_array_equal(affine, memory.affine)
    # through files: both as nibabel reads them
    ours = nib.load(str(dicom_to_nifti(folder, tmp_path / "ours.nii.gz")))
    np.testing.assert_array_equal(ours.affine, on_disk.affine)
    np.testing.assert_array_equal(ours.get_fdata(), on_disk.get_fdata())
    assert info.modality == "CT" and info.rescale_intercept == -1024.0 and info.slice_spacing == pytest.approx(2.5)
    assert info["modality"] == "CT" and info.as_dict()["shape"] == (16, 16, 5)
    with pytest.raises(KeyError):
        info["nope"]


def test_pydicom_ct_series_hounsfield_against_numpy(tmp_path):
    folder = shuffled_copy(CT5N, tmp_path / "ct", 5)
    volume, affine, info = read_dicom_series(folder, orientation=None)
    datasets = [pydicom.dcmread(f) for f in CT5N.iterdir()]
    datasets.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))  # axial: normal = +z
    expected = np.stack(
        [ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in datasets], axis=-1
    ).transpose(1, 0, 2)
    np.testing.assert_array_equal(volume, expected.astype(np.float32))
    first = datasets[0]
    dr, dc = (float(v) for v in first.PixelSpacing)
    p0 = np.array([float(v) for v in first.ImagePositionPatient])
    np.testing.assert_allclose(affine[:3, 3], [-p0[0], -p0[1], p0[2]], atol=1e-9)
    np.testing.assert_allclose(np.diag(affine)[:3], [-dc, -dr, 2.5], atol=1e-9)  # LPS -> RAS flips x, y
    assert info.orientation == "LPS"


# --- synthetic series with known geometry ----------------------------------------------------


@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_synthetic_series_equals_dicom2nifti(tmp_path, block, name):
    folder = tmp_path / "dcm"
    write_series(folder, block, GEOMETRIES[name], slope=0.5, intercept=-1024.0, shuffle_seed=len(name))
    volume, affine, info = read_dicom_series(folder)
    memory, on_disk = dicom2nifti_reference(folder, tmp_path / "d2n.nii.gz")
    np.testing.assert_array_equal(volume, np.asarray(memory.dataobj).astype(np.float32))
    np.testing.assert_array_equal(affine, memory.affine)
    ours = nib.load(str(dicom_to_nifti(folder, tmp_path / "ours.nii.gz")))
    np.testing.assert_array_equal(ours.affine, on_disk.affine)
    np.testing.assert_array_equal(ours.get_fdata(), on_disk.get_fdata())
    assert info.orientation == "LAS"


@pytest.mark.parametrize("seed", [3, 40, 43, 58])
def test_random_oblique_stacks_equal_dicom2nifti(tmp_path, seed):
    """Seeds 40, 43, 58: so oblique that dicom2nifti's axis choice is not nibabel's (nor LAS)."""
    rotation_matrix = pytest.importorskip("scipy.spatial.transform").Rotation.random(random_state=seed).as_matrix()
    folder = tmp_path / "dcm"
    small = colin_block(shape=(12, 14, 8))
    write_series(folder, small, geometry(rot=rotation_matrix), shuffle_seed=seed)
    volume, affine, info = read_dicom_series(folder)
    memory, _ = dicom2nifti_reference(folder, tmp_path / "d2n.nii.gz")
    np.testing.assert_array_equal(volume, np.asarray(memory.dataobj).astype(np.float32))
    np.testing.assert_array_equal(affine, memory.affine)
    assert info.orientation == "".join(nib.aff2axcodes(memory.affine))
    exact, exact_affine, exact_info = read_dicom_series(folder, orientation="LAS")
    assert nib.aff2axcodes(exact_affine) == ("L", "A", "S") and exact_info.orientation == "LAS"
    # same voxels in the world either way
    ijk = np.array([[0, 0, 0], [5, 3, 2]])
    world = nib.affines.apply_affine(exact_affine, ijk)
    back = np.rint(nib.affines.apply_affine(np.linalg.inv(affine), world)).astype(int)
    assert [volume[tuple(b)] for b in back] == [exact[tuple(i)] for i in ijk]


@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_synthetic_series_matches_source_geometry(tmp_path, block, name):
    """orientation=None: storage order, the source affine (slices reversed if the step opposes the normal)."""
    source = GEOMETRIES[name]
    folder = tmp_path / "dcm"
    write_series(folder, block, source, slope=0.25, intercept=-100.0, reverse_instances=True)
    expected = (stored_values(block, 0.25, -100.0) * 0.25 - 100.0).astype(np.float32)  # float64 numpy
    volume, affine, info = read_dicom_series(folder, orientation=None)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ source
    normal = np.cross(lps[:3, 0], lps[:3, 1])
    if lps[:3, 2] @ normal < 0:  # the reader stacks slices along +normal: flip the source's Z
        flip = np.diag([1.0, 1.0, -1.0, 1.0])
        flip[2, 3] = block.shape[2] - 1  # voxel k of the flipped array is voxel n-1-k of the source
        expected, source = expected[:, :, ::-1], source @ flip
    np.testing.assert_array_equal(volume, expected)
    np.testing.assert_allclose(affine, source, atol=1e-5)  # DS strings keep ~12 digits
    np.testing.assert_allclose(info.voxel_size, [0.9, 1.1, 2.5], rtol=1e-6)


@pytest.mark.parametrize("codes", ["RAS", "LPS", "LAS"])
def test_orientation_codes_match_nibabel(tmp_path, block, codes):
    source = GEOMETRIES["oblique"]
    write_series(tmp_path / "dcm", block, source, slope=1.0, intercept=0.0)
    volume, affine, info = read_dicom_series(tmp_path / "dcm", orientation=codes)
    image = nib.Nifti1Image(block.astype(np.float32), source)
    transform = nib.orientations.ornt_transform(
        nib.orientations.io_orientation(source), nib.orientations.axcodes2ornt(tuple(codes))
    )
    reference = image.as_reoriented(transform)
    np.testing.assert_array_equal(volume, np.asarray(reference.dataobj))
    np.testing.assert_allclose(affine, reference.affine, atol=1e-5)
    assert nib.aff2axcodes(affine) == tuple(codes) and info.orientation == codes


@pytest.mark.parametrize("reverse", [False, True])
def test_enhanced_multiframe_equals_dicom2nifti_and_source(tmp_path, block, reverse):
    source = GEOMETRIES["rotated-20-z"]
    (tmp_path / "enh").mkdir()
    path = write_enhanced(tmp_path / "enh" / "multi.dcm", block, source, slope=2.0, intercept=10.0, reverse_frames=reverse)
    volume, affine, info = read_dicom_series(path, orientation=None)
    expected = (stored_values(block, 2.0, 10.0) * 2.0 + 10.0).astype(np.float32)
    np.testing.assert_array_equal(volume, expected)
    np.testing.assert_allclose(affine, source, atol=1e-5)
    assert len(info.files) == block.shape[2] and info.rescale_slope == 2.0
    las_volume, las_affine, _ = read_dicom_series(tmp_path / "enh")
    memory, on_disk = dicom2nifti_reference(tmp_path / "enh", tmp_path / "d2n.nii.gz")
    np.testing.assert_array_equal(las_volume, np.asarray(memory.dataobj).astype(np.float32))
    np.testing.assert_array_equal(las_affine, memory.affine)


def test_ct_padding_value_set_to_air(tmp_path, block):
    values = block * 4.0 - 1000.0
    values[:5] = -2000.0 - 1024.0  # stored -2000 with intercept -1024: outside the field of view
    write_series(tmp_path / "dcm", values, GEOMETRIES["axial"], slope=1.0, intercept=-1024.0, padding_value=-2000)
    volume, _, info = read_dicom_series(tmp_path / "dcm", orientation=None)
    assert info.padding_voxels == 5 * block.shape[1] * block.shape[2]
    np.testing.assert_array_equal(volume[:5], AIR_HU)
    np.testing.assert_array_equal(volume[5:], values[5:].astype(np.float32))
    raw, _, raw_info = read_dicom_series(tmp_path / "dcm", orientation=None, pad_to_air=False)
    np.testing.assert_array_equal(raw[:5], -3024.0)
    assert raw_info.padding_voxels == 0


def test_ct_padding_without_tag_uses_constant_minimum(tmp_path, block):
    values = block * 4.0 - 1000.0
    values[:, :3] = -3024.0
    values[10, 10, 10] = -1100.0  # noise in air stays
    write_series(tmp_path / "dcm", values, GEOMETRIES["axial"], slope=1.0, intercept=-1024.0)
    volume, _, info = read_dicom_series(tmp_path / "dcm", orientation=None)
    assert info.padding_voxels == block.shape[0] * 3 * block.shape[2]
    np.testing.assert_array_equal(volume[:, :3], AIR_HU)
    assert volume[10, 10, 10] == -1100.0


def test_mr_is_never_padded(tmp_path, block):
    values = block.copy()
    values[:, :3] = -3000.0
    write_series(tmp_path / "dcm", values, GEOMETRIES["axial"], modality="MR", slope=1.0, intercept=0.0)
    volume, _, info = read_dicom_series(tmp_path / "dcm", orientation=None)
    assert info.padding_voxels == 0 and volume.min() == -3000.0


def test_non_dicom_files_are_skipped_with_a_warning(tmp_path, block):
    folder = tmp_path / "dcm"
    write_series(folder, block, GEOMETRIES["axial"])
    (folder / "notes.txt").write_text("not an image")
    (folder / "sub").mkdir()
    (folder / "sub" / "scan.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with pytest.warns(UserWarning, match=r"2 file\(s\) that are not DICOM: .*(notes\.txt|scan\.png)"):
        volume, _, _ = read_dicom_series(folder, orientation=None)
    np.testing.assert_array_equal(volume, (stored_values(block, 1.0, -1024.0) - 1024.0).astype(np.float32))


def test_dicomdir_is_skipped_silently_other_non_images_with_a_warning(tmp_path, block):
    folder = tmp_path / "dcm"
    write_series(folder, block[:, :, :4], GEOMETRIES["axial"])
    shutil.copy(DICOMDIR_TESTS / "DICOMDIR", folder / "DICOMDIR")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        volume, _, _ = read_dicom_series(folder)
    assert volume.shape == (40, 48, 4)
    shutil.copy(PYDICOM_FILES / "rtplan.dcm", folder / "plan.dcm")
    with pytest.warns(UserWarning, match=r"skipped 1 DICOM file\(s\) without an image: .*plan\.dcm"):
        read_dicom_series(folder)


def test_files_without_preamble_and_file_meta_are_read(tmp_path, block):
    """Old exports: a bare dataset (implicit VR little endian), no 128-byte preamble, no 'DICM'."""
    files = write_series(tmp_path / "dcm", block[:, :, :5], GEOMETRIES["axial"])
    for f in files[:3]:
        ds = pydicom.dcmread(f)
        ds.preamble = None
        del ds.file_meta
        pydicom.dcmwrite(f, ds, enforce_file_format=False, implicit_vr=True, little_endian=True)
    assert files[0].read_bytes()[128:132] != b"DICM"
    (tmp_path / "dcm" / "random.bin").write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.warns(UserWarning, match=r"1 file\(s\) that are not DICOM: .*random\.bin"):
        volume, _, info = read_dicom_series(tmp_path / "dcm", orientation=None)
    np.testing.assert_array_equal(volume, (stored_values(block[:, :, :5], 1.0, -1024.0) - 1024.0).astype(np.float32))
    assert info.transfer_syntax == "Implicit VR Little Endian"


def test_localizer_in_series_is_dropped(tmp_path, block):
    folder = tmp_path / "dcm"
    write_series(folder, block, GEOMETRIES["axial"])

    def scout(ds, k):
        ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "0", "-1"]

    write_series(tmp_path / "scout", block[:, :, :1], GEOMETRIES["axial"], extra=scout, shuffle_seed=99)
    shutil.copy(next((tmp_path / "scout").iterdir()), folder / "scout.dcm")
    with pytest.warns(UserWarning, match="localizer"):
        volume, _, info = read_dicom_series(folder, orientation=None)
    assert volume.shape == block.shape and not any("scout" in f for f in info.files)


def test_series_uid_selects_one_of_several(tmp_path, block):
    write_series(tmp_path / "a", block, GEOMETRIES["axial"], uid_root="1.2.3.4.1")
    write_series(tmp_path / "b", block[:, :, :6] * 2, GEOMETRIES["sagittal"], uid_root="1.2.3.4.2")
    with pytest.raises(DicomSeriesError, match=r"(?s)2 DICOM series; choose one with series_uid=.*1\.2\.3\.4\.1\.2.*1\.2\.3\.4\.2\.2"):
        read_dicom_series(tmp_path)
    volume, _, info = read_dicom_series(tmp_path, series_uid="1.2.3.4.2.2", orientation=None)
    assert volume.shape == (40, 48, 6) and info.series_uid == "1.2.3.4.2.2"


def test_list_of_files_and_single_slice(tmp_path, block):
    files = write_series(tmp_path / "dcm", block, GEOMETRIES["axial"])
    volume, _, _ = read_dicom_series([str(f) for f in files[3:8]], orientation=None)
    assert volume.shape == (40, 48, 5)
    one, affine, info = read_dicom_series(files[4], orientation=None)
    assert one.shape == (40, 48, 1) and info.slice_spacing == pytest.approx(2.5)
    np.testing.assert_allclose(affine[:3, 3], GEOMETRIES["axial"][:3, :3] @ [0, 0, 4] + GEOMETRIES["axial"][:3, 3])


def test_progress_bar_does_not_change_result(tmp_path, block):
    write_series(tmp_path / "dcm", block, GEOMETRIES["axial"])
    a, _, _ = read_dicom_series(tmp_path / "dcm", progress=True)
    b, _, _ = read_dicom_series(tmp_path / "dcm")
    np.testing.assert_array_equal(a, b)


def test_dicom_to_nifti_writes_only_dst(tmp_path, block):
    write_series(tmp_path / "dcm", block, GEOMETRIES["oblique"])
    out = tmp_path / "out"
    out.mkdir()
    path = dicom_to_nifti(tmp_path / "dcm", out / "ct.nii.gz")
    assert sorted(p.name for p in out.iterdir()) == ["ct.nii.gz"]
    volume, affine, _ = read_dicom_series(tmp_path / "dcm")
    image = nib.load(str(path))
    np.testing.assert_array_equal(image.get_fdata(dtype=np.float32), volume)
    np.testing.assert_allclose(image.affine, affine, atol=1e-4)


# --- bad input --------------------------------------------------------------------------------


def test_pydicom_localisers_with_mixed_orientations_name_the_position():
    with pytest.raises(DicomSeriesError, match=r"mixed orientations: the slice at position \(-?\d+\.\d\d, .*\) \(\w+\)"):
        read_dicom_series(DICOMDIR_TESTS / "98892003" / "MR700")


def test_pydicom_ct_with_missing_slices_names_the_position():
    with pytest.raises(DicomSeriesError, match=r"missing slice: 202\.500 mm between the slices at positions \(-125\.00, -128\.10, -99\.48\)"):
        read_dicom_series(DICOMDIR_TESTS / "77654033" / "CT2")


def test_pydicom_folder_with_several_series_lists_them():
    with pytest.raises(DicomSeriesError, match=r"(?s)holds 3 DICOM series; choose one with series_uid=.*FAST LOCALIZER"):
        read_dicom_series(DICOMDIR_TESTS / "98892003" / "MR1")


def test_missing_slice_in_synthetic_series(tmp_path, block):
    files = write_series(tmp_path / "dcm", block, GEOMETRIES["oblique"])
    files[7].unlink()
    with pytest.raises(DicomSeriesError, match=rf"missing slice: 5\.000 mm .* \({files[6].name}\) and .*\({files[8].name}\), 2\.500 mm"):
        read_dicom_series(tmp_path / "dcm")


def test_undecodable_transfer_syntax_is_named(tmp_path):
    ds = pydicom.dcmread(PYDICOM_FILES / "JPGExtended.dcm")  # 12-bit JPEG Extended: no installed decoder
    ds.ImagePositionPatient = ["0", "0", "0"]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.PixelSpacing = ["1", "1"]
    (tmp_path / "dcm").mkdir()
    ds.save_as(tmp_path / "dcm" / "x.dcm")
    with pytest.raises(DicomSeriesError, match=r"x\.dcm: cannot decode pixel data in transfer syntax JPEG Extended"):
        read_dicom_series(tmp_path / "dcm")


def test_unknown_transfer_syntax_is_named(tmp_path, block):
    files = write_series(tmp_path / "dcm", block[:, :, :3], GEOMETRIES["axial"])
    ds = pydicom.dcmread(files[1])
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.201"  # HTJ2K lossless, no decoder here
    ds.PixelData = pydicom.encaps.encapsulate([ds.PixelData])
    ds.save_as(files[1])
    with pytest.raises(DicomSeriesError, match=r"transfer syntax .*1\.2\.840\.10008\.1\.2\.4\.201"):
        read_dicom_series(tmp_path / "dcm")


def test_truncated_file_is_named(tmp_path):
    (tmp_path / "dcm").mkdir()
    shutil.copy(PYDICOM_FILES / "MR_truncated.dcm", tmp_path / "dcm" / "cut.dcm")
    with pytest.raises(DicomSeriesError, match=r"cut\.dcm: cannot read its pixel data .*truncated or corrupt"):
        read_dicom_series(tmp_path / "dcm")


def test_duplicate_position_with_different_pixels(tmp_path, block):
    files = write_series(tmp_path / "dcm", block[:, :, :4], GEOMETRIES["axial"])
    ds = pydicom.dcmread(files[2])
    ds.ImagePositionPatient = pydicom.dcmread(files[1]).ImagePositionPatient
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.99"
    ds.save_as(tmp_path / "dcm" / "dup.dcm")
    with pytest.raises(DicomSeriesError, match=r"two different slices at position"):
        read_dicom_series(tmp_path / "dcm")


def test_exact_duplicate_is_dropped(tmp_path, block):
    files = write_series(tmp_path / "dcm", block[:, :, :4], GEOMETRIES["axial"])
    shutil.copy(files[2], tmp_path / "dcm" / "copy.dcm")
    with pytest.warns(UserWarning, match="duplicate slice"):
        volume, _, _ = read_dicom_series(tmp_path / "dcm")
    assert volume.shape == (40, 48, 4)


def test_tilted_stack_is_refused(tmp_path, block):
    tilted = GEOMETRIES["axial"].copy()
    tilted[1, 2] = 0.8  # step has a component along y: gantry tilt
    write_series(tmp_path / "dcm", block[:, :, :5], tilted)
    with pytest.raises(DicomSeriesError, match="not stacked along their normal"):
        read_dicom_series(tmp_path / "dcm")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"orientation": "XYZ"}, ValueError, r"orientation must be 'dicom2nifti', None or 3 axis codes.*'XYZ'"),
        ({"orientation": "LLS"}, ValueError, r"orientation must be .*'LLS'"),
        ({"series_uid": 3}, TypeError, r"series_uid must be a string or None, got int"),
        ({"series_uid": "9.9"}, DicomSeriesError, r"series_uid '9\.9' is not in .* the series there are"),
    ],
)
def test_bad_arguments(tmp_path, block, kwargs, error, match):
    write_series(tmp_path / "dcm", block[:, :, :3], GEOMETRIES["axial"])
    with pytest.raises(error, match=match):
        read_dicom_series(tmp_path / "dcm", **kwargs)


def test_empty_and_missing_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"path must be a DICOM folder or file, got .*nowhere"):
        read_dicom_series(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DicomSeriesError, match="no DICOM image files found"):
        read_dicom_series(tmp_path / "empty")


def test_dicom_to_nifti_bad_destination(tmp_path, block):
    write_series(tmp_path / "dcm", block[:, :, :3], GEOMETRIES["axial"])
    with pytest.raises(ValueError, match=r"dst must end in \.nii or \.nii\.gz, got .*out\.png"):
        dicom_to_nifti(tmp_path / "dcm", tmp_path / "out.png")
    with pytest.raises(FileNotFoundError, match="dst folder .* does not exist"):
        dicom_to_nifti(tmp_path / "dcm", tmp_path / "no" / "out.nii.gz")


def test_colour_series_is_refused(tmp_path):
    ds = pydicom.dcmread(PYDICOM_FILES / "SC_rgb_small_odd.dcm")
    ds.ImagePositionPatient = ["0", "0", "0"]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.PixelSpacing = ["1", "1"]
    (tmp_path / "dcm").mkdir()
    ds.save_as(tmp_path / "dcm" / "rgb.dcm")
    with pytest.raises(DicomSeriesError, match=r"rgb\.dcm: colour image"):
        read_dicom_series(tmp_path / "dcm")


def test_no_warnings_on_clean_series(tmp_path, block):
    write_series(tmp_path / "dcm", block[:, :, :3], GEOMETRIES["axial"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_dicom_series(tmp_path / "dcm")


# --- recon convert -----------------------------------------------------------------------------


def test_cli_convert_writes_nifti_and_png(tmp_path, block, capsys):
    from recon.cli import main

    write_series(tmp_path / "dcm", block, GEOMETRIES["rotated-20-z"])
    (tmp_path / "dcm" / "README").write_text("not dicom")
    out = tmp_path / "out" / "ct.nii.gz"
    assert main(["convert", str(tmp_path / "dcm"), "-o", str(out), "--png", str(tmp_path / "out" / "ct.png")]) == 0
    captured = capsys.readouterr()
    assert captured.out.split() == [str(out), str(tmp_path / "out" / "ct.png")]
    assert captured.err.count("\n") == 1 and "warning: skipped 1 file(s) that are not DICOM" in captured.err
    with pytest.warns(UserWarning, match="README"):
        volume, affine, _ = read_dicom_series(tmp_path / "dcm")
    image = nib.load(str(out))
    np.testing.assert_array_equal(image.get_fdata(dtype=np.float32), volume)
    np.testing.assert_allclose(image.affine, affine, atol=1e-4)
    assert sorted(p.name for p in out.parent.iterdir()) == ["ct.nii.gz", "ct.png"]
    assert main(["convert", str(tmp_path / "dcm"), "-o", str(tmp_path / "ras.nii"), "--orientation", "RAS"]) == 0
    assert nib.aff2axcodes(nib.load(str(tmp_path / "ras.nii")).affine) == ("R", "A", "S")


def test_cli_convert_series_uid(tmp_path, block, capsys):
    from recon.cli import main

    write_series(tmp_path / "dcm" / "a", block[:, :, :5], GEOMETRIES["axial"], uid_root="1.2.3.4.1")
    write_series(tmp_path / "dcm" / "b", block[:, :, :6], GEOMETRIES["axial"], uid_root="1.2.3.4.2")
    assert main(["convert", str(tmp_path / "dcm"), "-o", str(tmp_path / "b.nii.gz"), "--series-uid", "1.2.3.4.2.2"]) == 0
    assert nib.load(str(tmp_path / "b.nii.gz")).shape == (40, 48, 6)


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("several", r"holds 2 DICOM series; choose one with series_uid= \(command line: --series-uid; list them with list_dicom_series / --list\)"),
        ("missing", r"input '.*nowhere' is neither a DICOM folder nor a file"),
        ("suffix", r"-o/--output must end in \.nii or \.nii\.gz, got '.*out\.png'"),
        ("png", r"--png must end in \.png, got '.*x\.jpg'"),
        ("orientation", r"orientation must be 'dicom2nifti', None or 3 axis codes"),
        ("gap", r"missing slice: 5\.000 mm between the slices at positions"),
    ],
)
def test_cli_convert_errors_are_one_line(tmp_path, block, capsys, case, match):
    from recon.cli import main

    dcm = tmp_path / "dcm"
    files = write_series(dcm / "a", block[:, :, :5], GEOMETRIES["axial"], uid_root="1.2.3.4.1")
    if case == "several":
        write_series(dcm / "b", block[:, :, :5], GEOMETRIES["axial"], uid_root="1.2.3.4.2")
    if case == "gap":
        files[2].unlink()
    args = {
        "missing": [str(tmp_path / "nowhere"), "-o", str(tmp_path / "x.nii.gz")],
        "suffix": [str(dcm), "-o", str(tmp_path / "out.png")],
        "png": [str(dcm), "-o", str(tmp_path / "x.nii.gz"), "--png", str(tmp_path / "x.jpg")],
        "orientation": [str(dcm), "-o", str(tmp_path / "x.nii.gz"), "--orientation", "XYZ"],
    }.get(case, [str(dcm), "-o", str(tmp_path / "x.nii.gz")])
    status = main(["convert", *args])
    err = capsys.readouterr().err
    reference = main(["reconstruct", str(tmp_path / "nowhere.h5"), "-o", str(tmp_path / "r")])  # an existing command
    capsys.readouterr()
    assert status == reference != 0
    assert err.startswith("recon convert: error:") and err.count("\n") == 1
    assert __import__("re").search(match, err)
    assert not (tmp_path / "x.nii.gz").exists() and not (tmp_path / "out.png").exists()


def test_list_dicom_series_and_cli_list(tmp_path, block, capsys):
    from recon.cli import main
    from recon.data import list_dicom_series

    write_series(tmp_path / "dcm" / "a", block[:, :, :5], GEOMETRIES["axial"], uid_root="1.2.3.4.1")
    write_series(tmp_path / "dcm" / "b", block[:, :, :6], GEOMETRIES["sagittal"], uid_root="1.2.3.4.2", modality="MR")
    entries = list_dicom_series(tmp_path / "dcm")
    assert [(e["series_uid"], e["modality"], e["files"], e["rows"], e["columns"]) for e in entries] == [
        ("1.2.3.4.1.2", "CT", 5, 48, 40), ("1.2.3.4.2.2", "MR", 6, 48, 40)
    ]
    assert main(["convert", str(tmp_path / "dcm"), "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].startswith("1.2.3.4.2.2\tseries 3\tMR\t6 file(s)\t48x40\tsynthetic MR")
    status = main(["convert", str(tmp_path / "dcm")])
    err = capsys.readouterr().err
    assert status != 0 and err.startswith("recon convert: error: -o/--output is required")
