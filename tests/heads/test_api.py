"""recon.synthesize / recon.denoise / recon.generate and the `recon synthesize|denoise` commands
with the bundled weights (skipped where a weight file is missing)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import recon
from recon.train.tasks_heads import available_heads

HEADS = available_heads()


def need(name):
    return pytest.mark.skipif(name not in HEADS, reason=f"bundled weights {name!r} missing")


def _head(shape=(40, 48, 24), seed=0):
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    r = np.sqrt(zz ** 2 + yy ** 2 + xx ** 2)
    vol = np.where(r < 0.8, 0.8, 0.0) + np.where(r < 0.5, 0.3, 0.0) + 0.02 * rng.random(shape)
    return vol.astype(np.float32)


@need("synthesis-unet-t1w-flair")
def test_synthesize_slice_shape_type_and_scale_invariance():
    t1 = _head()[:, :, 12]
    out = recon.synthesize(t1, source="t1", target="flair")
    assert isinstance(out, np.ndarray) and out.shape == t1.shape and out.dtype == np.float32
    assert np.isfinite(out).all()
    np.testing.assert_allclose(recon.synthesize(1000.0 * t1, source="T1w", target="flair"), out, rtol=1e-4, atol=1e-4)
    as_torch = recon.synthesize(torch.from_numpy(t1), source="t1", target="flair")
    assert isinstance(as_torch, torch.Tensor)
    np.testing.assert_allclose(as_torch.numpy(), out, rtol=1e-5, atol=1e-5)


@need("synthesis-resnet3d-t1w-flair")
def test_synthesize_volume_by_patches_matches_whole_volume_network():
    from recon.train.tasks_heads import load_head, normalise_volume

    vol = _head()
    out = recon.synthesize(vol, source="t1", target="flair", method="resnet3d", patch_size=16, overlap=8,
                           flip_average=False)
    assert out.shape == vol.shape and np.isfinite(out).all()
    model, _, _ = load_head("synthesis-resnet3d-t1w-flair")
    x, _ = normalise_volume(vol)
    with torch.no_grad():
        whole = model(torch.from_numpy(x)[None, None])[0, 0].numpy()
    # one patch covering the volume is the whole-volume network; overlapping patches differ only
    # near patch borders (zero padding there instead of the neighbours), softened by the blending
    one = recon.synthesize(vol, source="t1", target="flair", method="resnet3d", patch_size=64, flip_average=False)
    np.testing.assert_allclose(one, whole, rtol=1e-4, atol=1e-4)
    assert np.abs(out - whole).mean() < 0.03 * np.abs(whole).max()


@need("synthesis-unet-t1w-flair")
@need("synthesis-resnet3d-t1w-flair")
def test_flip_average_is_the_mean_with_the_mirrored_prediction():
    vol = _head()
    for image, dims in ((vol[:, :, 12], 2), (vol, 3)):
        plain = recon.synthesize(image, source="t1", target="flair", dims=dims, flip_average=False)
        mirrored = recon.synthesize(np.ascontiguousarray(image[::-1]), source="t1", target="flair", dims=dims,
                                    flip_average=False)[::-1]
        both = recon.synthesize(image, source="t1", target="flair", dims=dims)
        np.testing.assert_allclose(both, (plain + mirrored) / 2, rtol=1e-4, atol=1e-4)


@need("synthesis-unet-t1w-t2w")
def test_synthesize_volume_slice_by_slice():
    vol = _head()
    out = recon.synthesize(vol, source="t1", target="t2", dims=2)
    assert out.shape == vol.shape
    np.testing.assert_allclose(out[:, :, 5], recon.synthesize(vol[:, :, 5], source="t1", target="t2"), rtol=1e-4, atol=1e-4)


@need("cyclegan-t1w-t2w")
def test_cyclegan_both_directions():
    t1 = _head()[:, :, 12]
    assert recon.synthesize(t1, source="t1", target="t2", weights="cyclegan-t1w-t2w").shape == t1.shape
    assert recon.synthesize(t1, source="t2", target="t1", weights="cyclegan-t1w-t2w").shape == t1.shape


@need("denoise")
def test_denoise_slice_and_volume():
    from recon.heads.denoise import add_rician_noise

    clean = _head()
    noisy, _ = add_rician_noise(torch.from_numpy(clean)[None, None], 8.0, torch.Generator().manual_seed(0))
    noisy = noisy[0, 0].numpy()
    out = recon.denoise(noisy)
    assert out.shape == noisy.shape and (out >= 0).all()
    assert np.mean((out - clean) ** 2) < np.mean((noisy - clean) ** 2)
    sl = recon.denoise(noisy[:, :, 3])
    np.testing.assert_allclose(sl * 10, recon.denoise(10 * noisy[:, :, 3]), rtol=1e-4, atol=1e-4)


@need("gan")
def test_generate_seeded():
    a = recon.generate(3, seed=7)
    assert a.shape[0] == 3 and a.ndim == 3 and a.min() >= 0 and a.max() <= 1
    np.testing.assert_array_equal(a, recon.generate(3, seed=7))
    assert not np.array_equal(a, recon.generate(3, seed=8))


@need("synthesis-unet-t1w-flair")
def test_cli_synthesize_and_denoise(tmp_path, capsys):
    from recon.cli import main
    from recon.data.io import load_nifti, save_nifti

    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    save_nifti(tmp_path / "t1.nii.gz", _head(), affine=affine)
    assert main(["synthesize", str(tmp_path / "t1.nii.gz"), "-o", str(tmp_path / "flair.nii.gz"), "--dims", "2"]) == 0
    vol, aff, _ = load_nifti(tmp_path / "flair.nii.gz")
    assert vol.shape == _head().shape and np.allclose(aff, affine)
    if "denoise" in HEADS:
        assert main(["denoise", str(tmp_path / "t1.nii.gz"), "-o", str(tmp_path / "dn.nii.gz")]) == 0
    assert main(["synthesize", str(tmp_path / "t1.nii.gz"), "-o", str(tmp_path / "x.nii.gz"), "--target", "dwi"]) == 2
    assert "target" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cuda_tensor_comes_back_on_its_device():
    image = torch.rand(48, 40, device="cuda") + 0.5
    for out in (recon.synthesize(image, source="t1", target="flair"), recon.denoise(image)):
        assert isinstance(out, torch.Tensor) and out.device.type == "cuda" and out.shape == image.shape


def test_a_volume_with_few_slices_goes_slice_by_slice_but_not_to_a_3d_network():
    """A 3-slice reconstruction (make demo's) can be synthesised by the slice path; the 3-D
    networks refuse it with a clear error instead of the old 'at least 8 pixels' one."""
    rng = np.random.default_rng(0)
    volume = (rng.random((40, 36, 3)) + 0.5).astype(np.float32)
    out = recon.synthesize(volume, source="t1", target="flair", method="unet")
    assert out.shape == volume.shape and np.isfinite(out).all()
    # the slice path is slice by slice: each output slice is that slice synthesised alone
    np.testing.assert_allclose(out[:, :, 1], recon.synthesize(volume[:, :, 1], source="t1", target="flair"),
                               rtol=1e-4, atol=1e-4 * float(np.abs(out).max()))
    for method in ("ensemble", "resnet3d", None):
        with pytest.raises(ValueError, match="3 slices"):
            recon.synthesize(volume, source="t1", target="flair", method=method)
    with pytest.raises(ValueError, match="first two"):
        recon.synthesize(volume[:5], source="t1", target="flair", method="unet")


def test_denoise_takes_a_volume_with_few_slices():
    rng = np.random.default_rng(1)
    volume = (rng.random((40, 36, 3)) + 0.5).astype(np.float32)
    out = recon.denoise(volume)
    assert out.shape == volume.shape and np.isfinite(out).all()
