"""recon.ops.center_crop_or_pad: numpy and torch, against numpy slicing / np.pad references."""

import numpy as np
import pytest
import torch

from recon.ops import center_crop_or_pad


def _reference(x: np.ndarray, shape) -> np.ndarray:
    """fastMRI's rule written out per dim: crop start (n - N) // 2, pad before (N - n) // 2."""
    for axis, size in zip((-2, -1), shape):
        n = x.shape[axis]
        if n >= size:
            start = (n - size) // 2
            x = np.take(x, np.arange(start, start + size), axis=axis)
        else:
            before = (size - n) // 2
            widths = [(0, 0)] * x.ndim
            widths[axis] = (before, size - n - before)
            x = np.pad(x, widths)
    return x


@pytest.mark.parametrize("in_shape", [(7, 10), (3, 8, 9), (2, 1, 5, 6)])
@pytest.mark.parametrize("shape", [(4, 4), (9, 12), (7, 3), (3, 13), (1, 1)])
def test_matches_slicing_and_np_pad(in_shape, shape):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(in_shape) + 1j * rng.standard_normal(in_shape)).astype(np.complex64)
    out = center_crop_or_pad(x, shape)
    assert out.shape == in_shape[:-2] + shape and out.dtype == x.dtype
    np.testing.assert_array_equal(out, _reference(x, shape))
    got = center_crop_or_pad(torch.from_numpy(x), shape)
    assert isinstance(got, torch.Tensor)
    np.testing.assert_array_equal(got.numpy(), _reference(x, shape))


def test_agrees_with_tensor_center_crop_and_pad():
    from recon.ops import center_crop, center_pad

    x = torch.randn(2, 9, 11)
    assert torch.equal(center_crop_or_pad(x, (4, 6)), center_crop(x, (4, 6)))
    assert torch.equal(center_crop_or_pad(x, (12, 16)), center_pad(x, (12, 16)))


def test_new_array_in_native_byte_order():
    x = np.arange(30, dtype=">f4").reshape(5, 6)
    out = center_crop_or_pad(x, (3, 4))
    assert out.dtype == np.dtype("float32") and out.dtype.isnative
    np.testing.assert_array_equal(out, x[1:4, 1:5])
    out[...] = -1
    assert x.min() == 0  # a copy, not a view


@pytest.mark.parametrize(
    "data, shape, exc, match",
    [
        ([[1.0, 2.0]], (1, 1), TypeError, "data must be a numpy array or a torch.Tensor"),
        (np.zeros(5), (1, 1), ValueError, "data must have at least 2 dimensions"),
        (np.zeros((4, 4)), (0, 2), ValueError, "shape must be a pair of positive ints"),
        (np.zeros((4, 4)), (2, 2, 2), ValueError, "shape must be a pair of positive ints"),
        (np.zeros((4, 4)), None, TypeError, "shape must be a pair of ints"),
    ],
)
def test_bad_arguments(data, shape, exc, match):
    with pytest.raises(exc, match=match):
        center_crop_or_pad(data, shape)
