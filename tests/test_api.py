"""recon.reconstruct: the shape/type contract for every accepted input form, learned-model
loading (fastMRI checkpoints), and every rejected input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import recon.api as api
from recon.api import reconstruct
from tests.conftest import make_phantom

H, W, C = 48, 40, 6


@pytest.fixture(scope="module")
def data():
    """Multi-coil k-space (2 slices) of the shared phantom and a column mask with a 12-column centre."""
    kspace = make_phantom(H, W, C).kspace
    kspace = np.stack([kspace, 0.5 * kspace]).astype(np.complex64)  # (2, C, H, W)
    mask = np.zeros(W, dtype=np.float32)
    mask[::3] = 1
    mask[W // 2 - 6 : W // 2 + 6] = 1
    return kspace, mask


def _zf(kspace, mask):
    """Independent numpy zero-filled RSS."""
    coil = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(kspace * mask, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    return np.sqrt((np.abs(coil) ** 2).sum(-3))


# ------------------------------------------------------------------ shapes and types


@pytest.mark.parametrize(
    "form",
    ["numpy-complex", "numpy-realview", "torch-complex", "torch-realview"],
)
def test_input_forms_multicoil(data, form):
    kspace, mask = data
    volume, one = kspace, kspace[0]
    if form == "numpy-realview":
        volume, one = np.stack([volume.real, volume.imag], -1), np.stack([one.real, one.imag], -1)
    elif form == "torch-complex":
        volume, one = torch.from_numpy(volume), torch.from_numpy(one)
    elif form == "torch-realview":
        volume, one = torch.view_as_real(torch.from_numpy(volume)), torch.view_as_real(torch.from_numpy(one))
    out_volume = reconstruct(volume, mask, method="zero_filled")
    out_one = reconstruct(one, mask, method="zero_filled")
    kind = np.ndarray if form.startswith("numpy") else torch.Tensor
    assert isinstance(out_volume, kind) and isinstance(out_one, kind)
    assert tuple(out_volume.shape) == (2, H, W) and tuple(out_one.shape) == (H, W)
    assert out_volume.dtype in (np.float32, torch.float32)
    expected = _zf(kspace, mask)
    np.testing.assert_allclose(np.asarray(out_volume), expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(out_one), expected[0], rtol=1e-4, atol=1e-6)


def test_single_coil_forms(data):
    kspace, mask = data
    single = kspace[:, 0]  # (slices, H, W)
    out = reconstruct(single, mask, method="zero_filled", single_coil=True)
    assert out.shape == (2, H, W)
    np.testing.assert_allclose(out, _zf(single[:, None], mask), rtol=1e-4, atol=1e-6)
    out2d = reconstruct(single[0], mask, method="zero_filled")
    assert out2d.shape == (H, W)
    # a one-coil multi-coil slice (1, H, W) is still one slice
    assert reconstruct(single[:1], mask, method="zero_filled").shape == (H, W)
    # single-coil SENSE / CS use a unit map: no ESPIRiT needed
    for method in ("sense", "cs", "tv"):
        assert reconstruct(single[0], mask, method=method).shape == (H, W)


@pytest.mark.parametrize(
    "mask_form", ["column", "2d", "fastmri", "bool", "full-shape", "torch", "none"]
)
def test_mask_forms_agree(data, mask_form):
    kspace, mask = data
    masked = kspace * mask
    forms = {
        "column": mask,
        "2d": np.broadcast_to(mask, (H, W)),
        "fastmri": mask.reshape(1, 1, W, 1),
        "bool": mask.astype(bool),
        "full-shape": np.broadcast_to(mask, kspace.shape),
        "torch": torch.from_numpy(mask),
        "none": None,
    }
    out = reconstruct(masked, forms[mask_form], method="zero_filled")
    np.testing.assert_allclose(out, _zf(kspace, mask), rtol=1e-4, atol=1e-6)


def test_points_outside_the_mask_are_ignored(data):
    kspace, mask = data
    np.testing.assert_allclose(
        reconstruct(kspace, mask, method="zero_filled"), reconstruct(kspace * mask, None, method="zero_filled"),
        rtol=1e-5, atol=1e-7,
    )


def test_complex128_gives_float64(data):
    kspace, mask = data
    out = reconstruct(kspace.astype(np.complex128), mask, method="zero_filled")
    assert out.dtype == np.float64
    out_t = reconstruct(torch.from_numpy(kspace.astype(np.complex128)), mask, method="sense")
    assert out_t.dtype == torch.float64


@pytest.mark.parametrize("method", ["sense", "cs", "tv"])
def test_classical_methods_beat_zero_filled_and_keep_the_rss_scale(data, method):
    kspace, mask = data
    target = _zf(kspace, np.ones(W))
    zf = reconstruct(kspace, mask, method="zero_filled")
    out = reconstruct(kspace, mask, method=method)
    assert out.shape == (2, H, W)
    err = lambda x: np.linalg.norm(x - target) / np.linalg.norm(target)  # noqa: E731
    assert err(out) < err(zf)
    # slices reconstruct independently: the second slice is the first at half scale
    np.testing.assert_allclose(out[1], 0.5 * out[0], rtol=2e-2, atol=2e-3 * out.max())


def test_default_method_and_given_maps(data):
    kspace, mask = data
    assert api.DEFAULT_METHOD == "cascade"  # issue 12: beats cs on the held-out split at 4x and 8x
    default = reconstruct(kspace, mask)
    assert default.shape == (2, H, W)
    maps = np.ones_like(kspace) / np.sqrt(C)
    with_maps = reconstruct(kspace, mask, method="sense", sens_maps=maps)
    assert with_maps.shape == (2, H, W) and np.isfinite(with_maps).all()


def test_batch_size_and_progress_do_not_change_the_result(data):
    kspace, mask = data
    a = reconstruct(kspace, mask, method="sense")
    b = reconstruct(kspace, mask, method="sense", batch_size=1, progress=False)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    c = reconstruct(kspace, mask, method="zero_filled", batch_size=1, progress=True)
    assert c.shape == (2, H, W)


def test_device_argument(data, device):
    kspace, mask = data
    out = reconstruct(torch.from_numpy(kspace), mask, method="sense", device=device)
    assert out.device.type == "cpu"  # returned where the input lives


# ------------------------------------------------------------------ learned methods


@pytest.fixture(scope="module")
def fastmri_varnet():
    fastmri_models = pytest.importorskip("fastmri.models")
    with torch.random.fork_rng(devices=[]):  # parameter init of the reference model only
        torch.manual_seed(0)
        return fastmri_models.VarNet(num_cascades=2, sens_chans=4, sens_pools=2, chans=4, pools=2).eval()


def test_varnet_from_a_fastmri_state_dict_and_lightning_ckpt(data, fastmri_varnet, tmp_path):
    kspace, mask = data
    path = tmp_path / "varnet_state_dict.pt"
    torch.save(fastmri_varnet.state_dict(), path)
    out = reconstruct(kspace, mask, method="varnet", weights=path)
    assert out.shape == (2, H, W) and out.dtype == np.float32
    # reference: fastMRI's own forward on the same input
    k = torch.view_as_real(torch.from_numpy(kspace * mask))
    m = torch.from_numpy(mask).bool().view(1, 1, 1, W, 1).expand(2, 1, 1, W, 1)
    with torch.no_grad():
        ref = fastmri_varnet(k, m, num_low_frequencies=12).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-6 * float(np.abs(ref).max()))
    # Lightning checkpoint: state_dict under "state_dict" with a "varnet." prefix
    ckpt = tmp_path / "varnet.ckpt"
    torch.save(
        {"state_dict": {f"varnet.{k}": v for k, v in fastmri_varnet.state_dict().items()},
         "hyper_parameters": {"num_cascades": 2, "chans": 4, "pools": 2, "sens_chans": 4, "sens_pools": 2, "lr": 3e-4}},
        ckpt,
    )
    np.testing.assert_allclose(reconstruct(kspace, mask, method="varnet", weights=ckpt), out, rtol=1e-5, atol=1e-8)
    with pytest.raises(ValueError, match="needs multi-coil k-space"):
        reconstruct(kspace[:, 0], mask, method="varnet", weights=path, single_coil=True)


def test_unet_from_a_fastmri_state_dict(data, tmp_path):
    fastmri_models = pytest.importorskip("fastmri.models")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        unet = fastmri_models.Unet(in_chans=1, out_chans=1, chans=4, num_pool_layers=2).eval()
    path = tmp_path / "unet.pt"
    torch.save(unet.state_dict(), path)
    kspace, mask = data
    out = reconstruct(kspace, mask, method="unet", weights=path)
    image = torch.from_numpy(_zf(kspace, mask)).float()
    mean, std = image.mean(dim=(-2, -1), keepdim=True), image.std(dim=(-2, -1), keepdim=True)
    x = ((image - mean) / std).clamp(-6, 6)[:, None]
    with torch.no_grad():
        single = unet(x)[:, 0] * std + mean
        # the default self-ensemble: the mean over the four flips of the input, each flipped back
        flips = [unet(x)] + [unet(x.flip(d)).flip(d) for d in ((-1,), (-2,), (-2, -1))]
        ref = torch.stack(flips).mean(0)[:, 0] * std + mean
    np.testing.assert_allclose(out, ref.numpy(), rtol=1e-4, atol=1e-5 * float(ref.abs().max()))
    one = reconstruct(kspace, mask, method="unet", weights=path, self_ensemble=False)
    np.testing.assert_allclose(one, single.numpy(), rtol=1e-4, atol=1e-5 * float(single.abs().max()))
    assert np.abs(one - out).max() > 1e-3 * np.abs(out).max()  # the ensemble is not one pass


def _flipped_kspace(kspace, axes):
    """Multi-coil k-space whose coil images are those of ``kspace`` flipped along ``axes`` (numpy)."""
    coil = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(kspace, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    coil = np.flip(coil, axis=axes) if axes else coil
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(coil, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


def test_unet_self_ensemble_is_the_mean_over_flipped_inputs(data, tmp_path):
    from recon.models.unet import Unet

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(2)
        unet = Unet(in_chans=1, out_chans=1, chans=4, num_pool_layers=2).eval()
    path = tmp_path / "unet.pt"
    torch.save(unet.state_dict(), path)
    kspace, mask = data
    undersampled = (kspace * mask).astype(np.complex64)
    out = reconstruct(undersampled, mask, method="unet", weights=path)
    assert np.array_equal(out, reconstruct(undersampled, mask, method="unet", weights=path, self_ensemble=True))
    # each flip is one plain pass on k-space whose zero-filled image is the flipped one, flipped back
    parts = []
    for axes in ((), (-1,), (-2,), (-2, -1)):
        flipped = _flipped_kspace(undersampled, axes).astype(np.complex64)
        one = reconstruct(flipped, None, method="unet", weights=path, self_ensemble=False)
        parts.append(np.flip(one, axis=axes) if axes else one)
    ref = np.mean(parts, axis=0)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_self_ensemble_errors(data):
    kspace, mask = data
    with pytest.raises(ValueError, match="self_ensemble=True is only available for method 'unet'"):
        reconstruct(kspace, mask, method="cs", self_ensemble=True)
    with pytest.raises(TypeError, match="self_ensemble must be a bool or None, got"):
        reconstruct(kspace, mask, method="unet", self_ensemble="yes")
    # False is accepted by every method (nothing to switch off)
    assert reconstruct(kspace, mask, method="zero_filled", self_ensemble=False).shape == (2, H, W)


def test_weights_errors(data, tmp_path, monkeypatch):
    kspace, mask = data
    monkeypatch.setattr(api, "bundled_weights", lambda: {})
    with pytest.raises(FileNotFoundError, match="bundled checkpoints available: none"):
        reconstruct(kspace, mask, method="varnet")
    with pytest.raises(FileNotFoundError, match="neither an existing file nor a bundled checkpoint"):
        reconstruct(kspace, mask, method="unet", weights=tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    torch.save({"conv.weight": torch.zeros(3, 3)}, bad)
    with pytest.raises(ValueError, match="do not look like a varnet checkpoint"):
        reconstruct(kspace, mask, method="varnet", weights=bad)
    fastmri_models = pytest.importorskip("fastmri.models")
    unet = fastmri_models.Unet(in_chans=1, out_chans=1, chans=4, num_pool_layers=2)
    wrong = tmp_path / "unet_for_varnet.pt"
    torch.save(unet.state_dict(), wrong)
    with pytest.raises(ValueError, match="varnet"):
        reconstruct(kspace, mask, method="varnet", weights=wrong)
    state = unet.state_dict()
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, wrong)
    with pytest.raises(ValueError, match="do not fit the unet model"):
        reconstruct(kspace, mask, method="unet", weights=wrong)
    text = tmp_path / "text.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="could not read weights file"):
        reconstruct(kspace, mask, method="unet", weights=text)
    with pytest.raises(ValueError, match="weights= is only used by the learned methods"):
        reconstruct(kspace, mask, method="cs", weights=text)
    with pytest.raises(TypeError, match="weights must be a path"):
        reconstruct(kspace, mask, method="unet", weights=3)


def test_bundled_name_resolution(data, tmp_path, monkeypatch, fastmri_varnet):
    kspace, mask = data
    path = tmp_path / "varnet_brain.pt"
    torch.save(fastmri_varnet.state_dict(), path)
    monkeypatch.setattr(api, "bundled_weights", lambda: {"varnet_brain": path})
    by_name = reconstruct(kspace, mask, method="varnet", weights="varnet_brain")
    by_default = reconstruct(kspace, mask, method="varnet")
    np.testing.assert_allclose(by_name, by_default)


# ------------------------------------------------------------------ bad input


def test_bad_input(data):
    kspace, mask = data
    with pytest.raises(ValueError, match="kspace must be \\(H, W\\) or \\(slices, H, W\\)"):
        reconstruct(kspace[None], mask)
    with pytest.raises(ValueError, match="kspace must be"):
        reconstruct(kspace[0, 0, 0], mask)
    with pytest.raises(TypeError, match="kspace must be complex"):
        reconstruct(np.abs(kspace), mask)
    with pytest.raises(TypeError, match="kspace must be complex"):
        reconstruct(torch.from_numpy(np.abs(kspace)), mask)
    with pytest.raises(TypeError, match="kspace must be a numpy array or a torch.Tensor"):
        reconstruct(kspace.tolist(), mask)
    nan = kspace.copy()
    nan[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="kspace contains NaN or Inf"):
        reconstruct(nan, mask)
    with pytest.raises(ValueError, match="kspace is all zero"):
        reconstruct(np.zeros_like(kspace), mask)
    with pytest.raises(ValueError, match="does not broadcast against the kspace shape"):
        reconstruct(kspace, np.ones(W + 1))
    with pytest.raises(ValueError, match="mask must hold only 0 and 1"):
        reconstruct(kspace, mask * 2)
    with pytest.raises(ValueError, match="mask contains NaN"):
        reconstruct(kspace, mask * np.nan)
    with pytest.raises(ValueError, match="mask samples no k-space point"):
        reconstruct(kspace, np.zeros(W))
    with pytest.raises(TypeError, match="mask must be a numpy array, a torch.Tensor or None"):
        reconstruct(kspace, [1, 0])
    with pytest.raises(TypeError, match="mask must be real"):
        reconstruct(kspace, mask.astype(np.complex64))
    with pytest.raises(ValueError, match="method must be one of"):
        reconstruct(kspace, mask, method="magic")
    with pytest.raises(ValueError, match="device must be a torch device"):
        reconstruct(kspace, mask, device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            reconstruct(kspace, mask, device="cuda")
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        reconstruct(kspace, mask, batch_size=0)
    with pytest.raises(TypeError, match="batch_size must be a positive int"):
        reconstruct(kspace, mask, batch_size=1.5)
    with pytest.raises(TypeError, match="progress must be True, False or None"):
        reconstruct(kspace, mask, method="zero_filled", progress="yes")
    with pytest.raises(ValueError, match="sens_maps must have the k-space's shape"):
        reconstruct(kspace, mask, method="sense", sens_maps=kspace[:, :2])
    with pytest.raises(ValueError, match="sens_maps= is used by the methods"):
        reconstruct(kspace, mask, method="zero_filled", sens_maps=kspace)
    with pytest.raises(ValueError, match="sens_maps contains NaN"):
        reconstruct(kspace, mask, method="sense", sens_maps=kspace * np.nan)
    with pytest.raises(ValueError, match="single_coil=True needs"):
        reconstruct(kspace, mask, single_coil=True)
    with pytest.raises(ValueError, match="multi-coil kspace must be"):
        reconstruct(kspace[0, 0], mask, single_coil=False)
    with pytest.raises(ValueError, match="load_model needs a learned method"):
        api.load_model("cs")
    with pytest.raises(ValueError, match="method must be one of"):
        api.load_model("resnet")


@pytest.mark.parametrize("method", ["sense", "cs", "tv"])
def test_without_calibration_data_each_coil_is_reconstructed(data, method):
    kspace, _ = data
    narrow = np.zeros(W, dtype=np.float32)
    narrow[::2] = 1  # no fully sampled centre: no ESPIRiT
    with pytest.warns(RuntimeWarning, match="no usable fully sampled k-space centre"):
        out = reconstruct(kspace, narrow, method=method)
    assert out.shape == (2, H, W) and np.isfinite(out).all()
    target = _zf(kspace, np.ones(W))
    zf = reconstruct(kspace, narrow, method="zero_filled")
    err = lambda x: np.linalg.norm(x - target) / np.linalg.norm(target)  # noqa: E731
    assert err(out) <= err(zf) * 1.01


def test_cascade_from_a_bare_state_dict(data, tmp_path):
    models = pytest.importorskip("recon.models")
    if models.CascadeNet is None:
        pytest.skip("CascadeNet not available")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(2)
        net = models.CascadeNet(num_cascades=2, num_convs=3, num_filters=8, sens_chans=4, sens_pools=2).eval()
    path = tmp_path / "cascade.pt"
    torch.save(net.state_dict(), path)
    kspace, mask = data
    out = reconstruct(kspace, mask, method="cascade", weights=path)
    k = torch.view_as_real(torch.from_numpy(kspace * mask))
    m = torch.from_numpy(mask).bool().view(1, 1, 1, W, 1).expand(2, 1, 1, W, 1)
    with torch.no_grad():
        ref = net(k, m, torch.full((2,), 12)).numpy()
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-6 * float(np.abs(ref).max()))
    single = reconstruct(kspace[:, 0], mask, method="cascade", weights=path, single_coil=True)
    assert single.shape == (2, H, W)


def test_bundled_unet_if_present(data):
    if "unet" not in api.bundled_weights():
        pytest.skip("no bundled unet")
    kspace, mask = data
    out = reconstruct(kspace, mask, method="unet")
    assert out.shape == (2, H, W) and np.isfinite(out).all()


# ------------------------------------------------------------------ crop=


def test_unet_with_crop_follows_fastmris_unet_data_transform(data, tmp_path):
    """crop= gives fastMRI's U-Net protocol: the zero-filled RSS cropped, normalised over the crop,
    the network, un-normalised (fastmri.data.transforms.UnetDataTransform is the reference)."""
    fastmri_models = pytest.importorskip("fastmri.models")
    transforms = pytest.importorskip("fastmri.data.transforms")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(2)
        unet = fastmri_models.Unet(in_chans=1, out_chans=1, chans=4, num_pool_layers=2).eval()
    path = tmp_path / "unet.pt"
    torch.save(unet.state_dict(), path)
    kspace, mask = data
    crop = (28, 20)
    out = reconstruct(kspace, mask, method="unet", weights=path, self_ensemble=False, crop=crop)
    assert out.shape == (2, *crop)
    transform = transforms.UnetDataTransform("multicoil")
    for i in range(2):
        sample = transform(kspace[i] * mask, None, None, {"recon_size": (*crop, 1), "max": 1.0}, "f.h5", i)
        with torch.no_grad():
            ref = unet(sample.image[None, None].float())[0, 0] * sample.std + sample.mean
        np.testing.assert_allclose(out[i], ref.numpy(), rtol=1e-4, atol=1e-5 * float(ref.abs().max()))
    # the protocol matters: normalising over the full field of view and cropping afterwards differs
    full = reconstruct(kspace, mask, method="unet", weights=path, self_ensemble=False)
    top, left = (H - crop[0]) // 2, (W - crop[1]) // 2
    assert np.abs(full[:, top : top + crop[0], left : left + crop[1]] - out).max() > 1e-3 * np.abs(out).max()


@pytest.mark.parametrize("method", ["zero_filled", "cs"])
def test_crop_returns_the_centre_of_the_full_image(data, method):
    kspace, mask = data
    full = reconstruct(kspace, mask, method=method)
    for crop in [(31, 20), (48, 17), (1, 1)]:
        top, left = (H - crop[0]) // 2, (W - crop[1]) // 2  # fastMRI's center_crop offsets
        out = reconstruct(kspace, mask, method=method, crop=crop)
        np.testing.assert_allclose(out, full[:, top : top + crop[0], left : left + crop[1]], rtol=1e-5, atol=1e-7)
    # a side larger than the image is clipped to it (as `recon reconstruct` does with the header's size)
    clipped = reconstruct(kspace, mask, method=method, crop=(100, np.int64(20)))
    np.testing.assert_allclose(clipped, full[:, :, (W - 20) // 2 : (W - 20) // 2 + 20], rtol=1e-5, atol=1e-7)
    one = reconstruct(torch.from_numpy(kspace[0]), torch.from_numpy(mask), method=method, crop=torch.tensor([31, 20]))
    assert isinstance(one, torch.Tensor) and tuple(one.shape) == (31, 20)


@pytest.mark.parametrize(
    ("crop", "error", "match"),
    [
        ((0, 10), ValueError, r"crop must be two positive ints \(height, width\), got \(0, 10\)"),
        ((10, -2), ValueError, r"crop must be two positive ints"),
        (16, TypeError, r"crop must be None or two ints \(height, width\), got int"),
        ("ab", TypeError, r"crop must be None or two ints"),
        ((10, 10, 10), TypeError, r"crop must be None or two ints"),
        ((1.5, 2), TypeError, r"crop must be None or two ints \(height, width\), got \(1.5, 2\)"),
        ((True, 3), TypeError, r"crop must be None or two ints"),
    ],
)
def test_bad_crop_is_refused_naming_it(data, crop, error, match):
    kspace, mask = data
    with pytest.raises(error, match=match):
        reconstruct(kspace, mask, method="zero_filled", crop=crop)


def test_unet_checks_its_geometry_on_the_crop(data, tmp_path):
    from recon.models.unet import Unet

    path = tmp_path / "unet.pt"
    torch.save(Unet(in_chans=1, out_chans=1, chans=4, num_pool_layers=2).state_dict(), path)
    kspace, mask = data
    with pytest.raises(ValueError, match=r"crop \(3, 20\) is too small for the U-Net: .*needs an image of at least 4 x 4 .* got H = 3, W = 20"):
        reconstruct(kspace, mask, method="unet", weights=path, crop=(3, 20))


# ------------------------------------------------------------------ phase encoding along H


@pytest.mark.parametrize("method", ["varnet", "cascade", "unet"])
def test_learned_methods_reconstruct_a_row_mask_as_the_transposed_column_mask(data, method):
    """Phase encoding along H (a row mask): the networks learned column aliasing, so reconstruct
    transposes; the image equals the column-mask image of the transposed k-space, transposed
    (on the committed sample the bundled VarNet scored 0.866 / 0.710 SSIM at 4x / 8x on row
    masks before, 0.912 / 0.822 now: docs/reconstruct.md)."""
    if method not in api.bundled_weights():
        pytest.skip(f"no bundled {method}")
    kspace, mask = data
    columns = reconstruct(kspace * mask, mask, method=method)
    turned = np.ascontiguousarray(kspace.transpose(0, 1, 3, 2))  # (2, C, W, H): its rows are kspace's columns
    rows = np.repeat(mask[:, None], H, axis=1)  # (W, H): whole rows
    out = reconstruct(turned * rows, rows, method=method)
    assert out.shape == (2, W, H)
    np.testing.assert_allclose(out, columns.transpose(0, 2, 1), rtol=1e-4, atol=1e-5 * np.abs(columns).max())
    # crop= is read in the orientation of the input
    cropped = reconstruct(turned * rows, rows, method=method, crop=(24, 32))
    reference = reconstruct(kspace * mask, mask, method=method, crop=(32, 24))
    assert cropped.shape == (2, 24, 32)
    np.testing.assert_allclose(cropped, reference.transpose(0, 2, 1), rtol=1e-4, atol=1e-5 * np.abs(reference).max())


def test_row_mask_detection():
    rows = torch.zeros(1, 1, 6, 5, 1)
    rows[:, :, ::2] = 1
    columns = rows.transpose(2, 3)
    assert api._row_mask(rows) and not api._row_mask(columns)
    assert not api._row_mask(torch.ones(1, 1, 6, 5, 1))  # fully sampled: both, read as columns
    random_2d = (torch.rand(1, 1, 6, 5, 1, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    assert not api._row_mask(random_2d)
    assert not api._row_mask(torch.ones(1, 1, 6, 1, 1))  # one column
