"""Transforms against fastmri.data.transforms, sample for sample; collate of mixed sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

try:  # only the fastMRI parity tests need the fastmri package; the rest run without it
    import fastmri.data as fastmri_data
    from fastmri.data import transforms as fastmri_transforms
except ImportError:
    fastmri_data = fastmri_transforms = None
needs_fastmri = pytest.mark.skipif(fastmri_data is None, reason="fastMRI parity test: needs the fastmri package")
from recon.masks import EquispacedMaskFractionFunc, RandomMaskFunc  # fastMRI-exact (tests/test_masks.py)
from fastmri_files import write_folder
from recon.data import (
    SliceDataset,
    UnetDataTransform,
    UnetSample,
    VarNetDataTransform,
    VarNetSample,
    collate_samples,
    to_tensor,
)

TOL = {torch.float64: 1e-10, torch.float32: 1e-5}  # as tests/conftest.py


def _assert_same_sample(ours, theirs):
    assert type(ours).__name__ == type(theirs).__name__
    assert ours._fields == theirs._fields
    for name in ours._fields:
        a, b = getattr(ours, name), getattr(theirs, name)
        if isinstance(b, torch.Tensor):
            assert a.dtype == b.dtype and a.shape == b.shape, name
            if a.is_floating_point():  # recon.ops FFTs differ from torch.fft in the last bits
                torch.testing.assert_close(a, b, rtol=TOL[a.dtype], atol=TOL[a.dtype], msg=name)
            else:
                assert torch.equal(a, b), name
        else:
            assert a == b, (name, a, b)


MASKS = {
    "random": lambda: RandomMaskFunc([0.08], [4]),
    "equispaced_fraction": lambda: EquispacedMaskFractionFunc([0.16], [4]),
}


@needs_fastmri
@pytest.mark.parametrize("mask", ["random", "equispaced_fraction", None])
@pytest.mark.parametrize(
    "challenge, file_kwargs",
    [
        ("multicoil", dict()),
        ("multicoil", dict(targets=())),
        ("singlecoil", dict(coils=None, targets=("reconstruction_esc",))),
    ],
)
def test_unet_transform_matches_fastmri(tmp_path, challenge, file_kwargs, mask):
    root = write_folder(tmp_path / "d", n_files=2, **file_kwargs)
    mask_func = MASKS[mask]() if mask else None
    ours = SliceDataset(root, challenge, transform=UnetDataTransform(challenge, mask_func))
    theirs = fastmri_data.SliceDataset(
        root, challenge, transform=fastmri_transforms.UnetDataTransform(challenge, MASKS[mask]() if mask else None)
    )
    for a, b in zip(ours, theirs):
        assert isinstance(a, UnetSample)
        _assert_same_sample(a, b)


@needs_fastmri
@pytest.mark.parametrize("mask", ["random", "equispaced_fraction"])
@pytest.mark.parametrize(
    "challenge, file_kwargs",
    [("multicoil", dict()), ("multicoil", dict(targets=())), ("singlecoil", dict(coils=None, targets=("reconstruction_esc",)))],
)
def test_varnet_transform_matches_fastmri(tmp_path, challenge, file_kwargs, mask):
    root = write_folder(tmp_path / "d", n_files=2, **file_kwargs)
    ours = SliceDataset(root, challenge, transform=VarNetDataTransform(MASKS[mask]()))
    theirs = fastmri_data.SliceDataset(root, challenge, transform=fastmri_transforms.VarNetDataTransform(MASKS[mask]()))
    for a, b in zip(ours, theirs):
        assert isinstance(a, VarNetSample)
        _assert_same_sample(a, b)
        # header padding: columns [0, 1) and [23, 24) can never be sampled
        assert not a.mask[..., :1, :].any() and not a.mask[..., 23:, :].any()


@needs_fastmri
def test_varnet_transform_with_the_files_own_mask_matches_fastmri(tmp_path):
    root = write_folder(tmp_path / "d", n_files=2, targets=(), test_mask=True)
    ours = SliceDataset(root, "multicoil", transform=VarNetDataTransform())
    theirs = fastmri_data.SliceDataset(root, "multicoil", transform=fastmri_transforms.VarNetDataTransform())
    for a, b in zip(ours, theirs):
        _assert_same_sample(a, b)


def test_validation_masks_are_per_volume_training_masks_are_fresh(tmp_path):
    root = write_folder(tmp_path / "d", n_files=2, shape=(32, 64))
    val = SliceDataset(root, "multicoil", transform=VarNetDataTransform(RandomMaskFunc([0.08], [4]), use_seed=True))
    masks = [(s.fname, s.mask) for s in val]
    for fname, mask in masks:
        same_volume = [m for f, m in masks if f == fname]
        assert all(torch.equal(mask, m) for m in same_volume)
    assert not torch.equal(masks[0][1], masks[-1][1])  # two volumes, two masks
    assert all(torch.equal(a.mask, b.mask) for a, b in zip(val, val))  # replayable
    train = SliceDataset(root, "multicoil", transform=VarNetDataTransform(RandomMaskFunc([0.08], [4]), use_seed=False))
    draws = {tuple(train[0].mask.flatten().tolist()) for _ in range(6)}
    assert len(draws) > 1


@needs_fastmri
def test_to_tensor_is_fastmri_to_tensor_without_a_copy():
    x = (np.arange(12).reshape(3, 4) + 1j * np.ones((3, 4))).astype(np.complex64)
    t = to_tensor(x)
    assert torch.equal(t, fastmri_transforms.to_tensor(x))
    x[0, 0] = 100
    assert t[0, 0, 0] == 100  # shares memory
    r = np.ones((2, 2), np.float32)
    assert torch.equal(to_tensor(r), torch.ones(2, 2))
    with pytest.raises(TypeError, match="data must be a numpy array, got list"):
        to_tensor([1, 2])


def test_transform_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="which_challenge must be 'singlecoil' or 'multicoil', got 'knee'"):
        UnetDataTransform("knee")
    with pytest.raises(TypeError, match="mask_func must be callable"):
        UnetDataTransform("multicoil", mask_func="random")
    with pytest.raises(TypeError, match="mask_func must be callable"):
        VarNetDataTransform(mask_func=4)
    root = write_folder(tmp_path / "d", n_files=1, targets=())
    ds = SliceDataset(root, "multicoil", transform=VarNetDataTransform())
    with pytest.raises(ValueError, match="file_brain_000.h5: no mask_func was given and the file has no 'mask'"):
        ds[0]


# -- collate ------------------------------------------------------------------------------
def test_collate_equal_sizes_is_a_plain_stack(tmp_path):
    root = write_folder(tmp_path / "d", n_files=2)
    ds = SliceDataset(root, "multicoil", transform=VarNetDataTransform(RandomMaskFunc([0.08], [4])))
    batch = collate_samples([ds[0], ds[1], ds[2]])
    default = torch.utils.data.default_collate([ds[0], ds[1], ds[2]])
    assert torch.equal(batch.masked_kspace, default.masked_kspace)
    assert torch.equal(batch.mask, default.mask)
    assert batch.fname == list(default.fname)
    assert batch.crop_size.tolist() == [[16, 16]] * 3
    assert batch.slice_num.tolist() == [0, 1, 0]


def test_collate_pads_mixed_matrix_sizes_keeping_the_kspace_centre(tmp_path):
    a_root = write_folder(tmp_path / "a", n_files=1, shape=(32, 24), coils=4)
    b_root = write_folder(tmp_path / "b", n_files=1, shape=(27, 19), coils=3, rec=(12, 12))
    transform = VarNetDataTransform(EquispacedMaskFractionFunc([0.25], [2]))
    a = SliceDataset(a_root, "multicoil", transform=transform)[0]
    b = SliceDataset(b_root, "multicoil", transform=transform)[0]
    batch = collate_samples([a, b])
    assert batch.masked_kspace.shape == (2, 4, 32, 24, 2)
    assert batch.mask.shape == (2, 1, 1, 24, 1) and batch.mask.dtype == torch.bool
    # the DC sample (index n // 2) lands on the DC index of the padded grid (N // 2)
    assert torch.equal(batch.masked_kspace[1, 0, 32 // 2, 24 // 2], b.masked_kspace[0, 27 // 2, 19 // 2])
    assert torch.equal(batch.masked_kspace[1, :3, 16 - 13 : 16 - 13 + 27, 12 - 9 : 12 - 9 + 19], b.masked_kspace)
    assert batch.masked_kspace[1, 3].abs().sum() == 0  # the missing coil is a zero coil
    assert not batch.mask[1, ..., :3, :].any() and not batch.mask[1, ..., 22:, :].any()
    assert batch.crop_size.tolist() == [[16, 16], [12, 12]]
    assert batch.target.shape == (2, 16, 16)
    # targets pad centred too (offset N // 2 - n // 2)
    assert torch.equal(batch.target[1, 2:14, 2:14], b.target)


def test_collate_errors(tmp_path):
    with pytest.raises(ValueError, match="batch must contain at least one sample"):
        collate_samples([])
    root = write_folder(tmp_path / "d", n_files=1)
    u = SliceDataset(root, "multicoil", transform=UnetDataTransform("multicoil"))[0]
    v = SliceDataset(root, "multicoil", transform=VarNetDataTransform(RandomMaskFunc([0.08], [4])))[0]
    with pytest.raises(ValueError, match="batch must be NamedTuple samples of one type"):
        collate_samples([u, v])
    with pytest.raises(ValueError, match="batch must be NamedTuple samples of one type"):
        collate_samples([(1, 2)])


@needs_fastmri
def test_inplace_masking_same_values_and_only_mutates_when_asked(tmp_path):
    root = write_folder(tmp_path / "d", n_files=1)
    kspace, mask, target, attrs, fname, slice_num = SliceDataset(root, "multicoil")[0]
    mask_func = RandomMaskFunc([0.08], [4])
    original = kspace.copy()
    copy_sample = VarNetDataTransform(mask_func)(kspace, mask, target, attrs, fname, slice_num)
    assert np.array_equal(kspace, original)  # the default leaves the input alone
    ref = fastmri_transforms.apply_mask(fastmri_transforms.to_tensor(original), mask_func, seed=tuple(map(ord, fname)),
                                        padding=(attrs["padding_left"], attrs["padding_right"]))[0]
    assert torch.equal(copy_sample.masked_kspace, ref)
    inplace_sample = VarNetDataTransform(mask_func, inplace=True)(kspace, mask, target, attrs, fname, slice_num)
    assert torch.equal(inplace_sample.masked_kspace, ref)
    assert np.shares_memory(inplace_sample.masked_kspace.numpy(), kspace)  # no copy was made
    assert not np.array_equal(kspace, original)


@needs_fastmri
def test_non_column_masks_and_odd_inputs_take_the_general_path(tmp_path):
    root = write_folder(tmp_path / "d", n_files=1)
    kspace, mask, target, attrs, fname, slice_num = SliceDataset(root, "multicoil")[0]

    def checkerboard(shape, offset=None, seed=None):
        m = torch.zeros(shape[:-1] + (1,))
        m[..., ::2, ::2, :] = 1
        return m, 0

    out = VarNetDataTransform(checkerboard)(kspace, mask, target, attrs, fname, slice_num)
    expect = fastmri_transforms.to_tensor(kspace) * checkerboard((1, 32, 24, 2))[0]
    expect[..., :1, :] = 0
    expect[..., 23:, :] = 0
    assert torch.equal(out.masked_kspace, expect)
    strided = kspace[..., ::-1]  # not C-contiguous: goes through recon.masks.apply_mask
    a = UnetDataTransform("multicoil", EquispacedMaskFractionFunc([0.25], [2]))(strided, None, target, attrs, fname, 0)
    b = fastmri_transforms.UnetDataTransform("multicoil", EquispacedMaskFractionFunc([0.25], [2]))(
        strided.copy(), None, target, attrs, fname, 0)
    torch.testing.assert_close(a.image, b.image, rtol=1e-5, atol=1e-5)
    with pytest.raises(TypeError, match="kspace must be a numpy array, got Tensor"):
        VarNetDataTransform(checkerboard)(torch.zeros(2, 2), mask, target, attrs, fname, 0)


def test_slice_dataset_hands_fresh_arrays_to_call_owned(tmp_path):
    root = write_folder(tmp_path / "d", n_files=1)
    calls = []

    class Spy(VarNetDataTransform):
        def call_owned(self, kspace, *rest):
            calls.append(kspace)
            return super().call_owned(kspace, *rest)

    ds = SliceDataset(root, "multicoil", transform=Spy(RandomMaskFunc([0.08], [4])))
    sample = ds[0]
    assert len(calls) == 1 and np.shares_memory(sample.masked_kspace.numpy(), calls[0])  # masked in place
    plain = SliceDataset(root, "multicoil", transform=lambda *raw: raw[0])  # no call_owned: just called
    assert plain[0].shape == (4, 32, 24)
