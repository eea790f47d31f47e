"""``recon.reconstruct`` fed bad or unusual input: a clear error naming the argument, or a correct image.

Classes 2 (mask layouts), 3 (geometry), 4 (flag types, sens_maps, dtypes) of issue 9.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from recon import reconstruct
from recon.api import METHODS, MIN_KSPACE_SIZE
from reliability_helpers import column_mask, phantom_kspace, raises_naming, zero_filled_reference

K = phantom_kspace()  # (4, 32, 24) complex64
C, H, W = K.shape
M = column_mask(W)
SQUARE = phantom_kspace(coils=4, height=24, width=24)  # (4, 24, 24): rows and columns alike
MS = column_mask(24, step=3)
ZF = dict(method="zero_filled")


def _with(array, index, value):
    out = np.array(array)
    out[index] = value
    return out


# (id, call, exception type, names the message must contain)
ERRORS = [
    # k-space: type, rank, values
    ("kspace-real-no-trailing-2", lambda: reconstruct(K.real, **ZF), TypeError, ["kspace"]),
    ("kspace-int", lambda: reconstruct(np.ones((4, 8, 2), dtype=np.int64), **ZF), TypeError, ["kspace"]),
    ("kspace-list", lambda: reconstruct(K.tolist(), **ZF), TypeError, ["kspace"]),
    ("kspace-none", lambda: reconstruct(None, **ZF), TypeError, ["kspace"]),
    ("kspace-clongdouble", lambda: reconstruct(K.astype(np.clongdouble), **ZF), TypeError, ["kspace"]),
    ("kspace-torch-int", lambda: reconstruct(torch.ones(4, 8, 8, 2, dtype=torch.int32), **ZF), TypeError, ["kspace"]),
    ("kspace-1d", lambda: reconstruct(K[0, 0], **ZF), ValueError, ["kspace"]),
    ("kspace-5d", lambda: reconstruct(K[None, None], **ZF), ValueError, ["kspace"]),
    ("kspace-nan", lambda: reconstruct(_with(K, (0, 3, 3), np.nan), **ZF), ValueError, ["kspace", "NaN"]),
    ("kspace-inf", lambda: reconstruct(_with(K, (1, 2, 2), np.inf), **ZF), ValueError, ["kspace", "Inf"]),
    ("kspace-all-zero", lambda: reconstruct(np.zeros_like(K), **ZF), ValueError, ["kspace", "all zero"]),
    ("kspace-no-slices", lambda: reconstruct(np.zeros((0, C, H, W), np.complex64), **ZF), ValueError, ["kspace", "empty"]),
    ("kspace-no-coils", lambda: reconstruct(np.zeros((0, H, W), np.complex64), **ZF), ValueError, ["kspace", "empty"]),
    ("kspace-no-rows", lambda: reconstruct(K[:, :0], **ZF), ValueError, ["kspace", "empty"]),
    ("mask-empty", lambda: reconstruct(K, np.zeros(0), **ZF), ValueError, ["mask"]),
    ("mask-object", lambda: reconstruct(K, np.array([None] * W), **ZF), TypeError, ["mask"]),
    # masks
    ("mask-wrong-shape", lambda: reconstruct(K, np.ones(W + 1), **ZF), ValueError, ["mask", str((C, H, W))]),
    ("mask-complex", lambda: reconstruct(K, M.astype(np.complex64), **ZF), TypeError, ["mask"]),
    ("mask-fraction", lambda: reconstruct(K, M * 0.5, **ZF), ValueError, ["mask", "0 and 1"]),
    ("mask-nan", lambda: reconstruct(K, _with(M, 0, np.nan), **ZF), ValueError, ["mask", "NaN"]),
    ("mask-strings", lambda: reconstruct(K, np.array(["a"] * W), **ZF), TypeError, ["mask"]),
    ("mask-list", lambda: reconstruct(K, M.tolist(), **ZF), TypeError, ["mask"]),
    ("mask-all-zero", lambda: reconstruct(K, np.zeros(W), **ZF), ValueError, ["mask", "samples no"]),
    ("mask-torch-complex", lambda: reconstruct(K, torch.ones(W, dtype=torch.complex64), **ZF), TypeError, ["mask"]),
    # a trailing 1 always means columns: an (H, 1) "row mask" is read as W columns and refused
    ("mask-trailing-1-is-columns", lambda: reconstruct(K, np.ones((H, 1)), **ZF), ValueError, ["mask", "columns"]),
    # method / weights
    ("method-unknown", lambda: reconstruct(K, method="fista"), ValueError, ["method", "fista"]),
    ("method-none", lambda: reconstruct(K, method=None), ValueError, ["method"]),
    ("method-upper", lambda: reconstruct(K, method="CS"), ValueError, ["method"]),
    ("weights-classical", lambda: reconstruct(K, method="cs", weights="x.pt"), ValueError, ["weights"]),
    ("weights-missing-file", lambda: reconstruct(K, method="unet", weights="/nonexistent/w.pt"), FileNotFoundError, ["/nonexistent/w.pt"]),
    ("weights-int", lambda: reconstruct(K, method="unet", weights=3), TypeError, ["weights"]),
    # sens_maps
    ("maps-with-zero-filled", lambda: reconstruct(K, M, method="zero_filled", sens_maps=np.ones_like(K)), ValueError, ["sens_maps"]),
    ("maps-wrong-shape", lambda: reconstruct(K, M, method="sense", sens_maps=np.ones_like(K[:2])), ValueError, ["sens_maps"]),
    ("maps-nan", lambda: reconstruct(K, M, method="sense", sens_maps=_with(np.ones_like(K), (0, 0, 0), np.nan)), ValueError, ["sens_maps"]),
    ("maps-real", lambda: reconstruct(K, M, method="sense", sens_maps=np.ones(K.shape)), TypeError, ["sens_maps"]),
    ("maps-all-zero-sense", lambda: reconstruct(K, M, method="sense", sens_maps=np.zeros_like(K)), ValueError, ["sens_maps", "zero"]),
    ("maps-all-zero-cs", lambda: reconstruct(K, M, method="cs", sens_maps=np.zeros_like(K)), ValueError, ["sens_maps", "zero"]),
    ("maps-all-zero-tv", lambda: reconstruct(K, M, method="tv", sens_maps=np.zeros_like(K)), ValueError, ["sens_maps", "zero"]),
    ("maps-zero-in-one-slice", lambda: reconstruct(np.stack([K, K]), M, method="sense",
                                                    sens_maps=np.stack([np.ones_like(K), np.zeros_like(K)])),
     ValueError, ["sens_maps", "slice"]),
    # flags
    ("single-coil-str", lambda: reconstruct(K, **ZF, single_coil="no"), TypeError, ["single_coil", "'no'"]),
    ("single-coil-int", lambda: reconstruct(K, **ZF, single_coil=1), TypeError, ["single_coil"]),
    ("single-coil-none-str", lambda: reconstruct(K, **ZF, single_coil="False"), TypeError, ["single_coil"]),
    ("single-coil-true-on-4d", lambda: reconstruct(K[None], **ZF, single_coil=True), ValueError, ["single_coil"]),
    ("multi-coil-on-2d", lambda: reconstruct(K[0], **ZF, single_coil=False), ValueError, ["kspace"]),
    ("batch-size-zero", lambda: reconstruct(K, **ZF, batch_size=0), ValueError, ["batch_size"]),
    ("batch-size-float", lambda: reconstruct(K, **ZF, batch_size=1.5), TypeError, ["batch_size"]),
    ("batch-size-bool", lambda: reconstruct(K, **ZF, batch_size=True), TypeError, ["batch_size"]),
    ("progress-str", lambda: reconstruct(np.stack([K, K]), **ZF, batch_size=1, progress="yes"), TypeError, ["progress"]),
    ("device-unknown", lambda: reconstruct(K, **ZF, device="gpu0"), ValueError, ["device"]),
    # geometry: k-space smaller than the method can take (class 3)
    ("unet-one-row", lambda: reconstruct(K[:, :1, :], method="unet"), ValueError, ["kspace", "unet", "at least"]),
    ("unet-one-column", lambda: reconstruct(K[:, :, :1], method="unet"), ValueError, ["kspace", "unet", "at least"]),
    ("unet-coarsest-level-1px", lambda: reconstruct(phantom_kspace(height=15, width=15), method="unet"), ValueError, ["kspace", "unet"]),
    ("cascade-one-column", lambda: reconstruct(K[:, :, :1], method="cascade"), ValueError, ["kspace", "cascade", "1 x 2"]),
    ("varnet-one-column", lambda: reconstruct(K[:, :, :1], method="varnet"), ValueError, ["kspace", "varnet", "1 x 2"]),
    ("varnet-single-coil", lambda: reconstruct(K[0], M, method="varnet"), ValueError, ["varnet", "multi-coil"]),
]
if not torch.cuda.is_available():
    ERRORS.append(("device-cuda-absent", lambda: reconstruct(K, **ZF, device="cuda"), ValueError, ["device", "cuda"]))


@pytest.mark.parametrize("call, exc, names", [pytest.param(*case[1:], id=case[0]) for case in ERRORS])
def test_reconstruct_refuses(call, exc, names):
    with raises_naming(exc, *names):
        call()


def test_weights_not_a_checkpoint_names_the_file(tmp_path):
    bad = tmp_path / "garbage.pt"
    bad.write_bytes(b"not a checkpoint")
    with raises_naming(ValueError, str(bad)):
        reconstruct(K, M, method="unet", weights=bad)


# ---------------------------------------------------------------------------- class 2: mask layouts

_REF_SQUARE = zero_filled_reference(SQUARE, MS)


@pytest.mark.parametrize(
    "kspace, mask",
    [
        pytest.param(SQUARE, MS.reshape(1, 24, 1), id="fastmri-(1,W,1)-on-(C,H,H)"),
        pytest.param(SQUARE[None], MS.reshape(1, 1, 24, 1), id="fastmri-(1,1,W,1)-on-(S,C,H,H)"),
        pytest.param(SQUARE[None], MS.reshape(1, 1, 1, 24, 1), id="fastmri-(1,1,1,W,1)-5d-on-(S,C,H,H)"),
        pytest.param(SQUARE[None], torch.from_numpy(MS).view(1, 1, 24, 1).bool(), id="torch-bool-(1,1,W,1)"),
        pytest.param(SQUARE, MS, id="column-(W,)"),
        pytest.param(SQUARE, np.broadcast_to(MS, (24, 24)), id="2d-(H,W)-read-only"),
        pytest.param(SQUARE, np.broadcast_to(MS, SQUARE.shape).copy(), id="full-shape"),
    ],
)
def test_fastmri_column_layout_on_square_kspace(kspace, mask):
    """A trailing 1 always means columns, square k-space included (was read as rows: error 0.69)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. torch's "array is not writable" for read-only masks
        out = reconstruct(kspace * MS, mask, method="zero_filled")
    np.testing.assert_allclose(out.reshape(24, 24), _REF_SQUARE, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------------------- class 4: dtypes


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype, expected", [(np.complex128, np.float64), (np.complex64, np.float32)])
def test_dtype_in_is_dtype_out(method, dtype, expected):
    """complex128 -> float64 for every method, learned ones included (they compute in float32)."""
    kspace = phantom_kspace(height=32, width=32, dtype=dtype)
    mask = column_mask(32, step=2, center=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = reconstruct(kspace * mask, mask, method=method)
    assert out.dtype == expected and out.shape == (32, 32) and np.isfinite(out).all()


@pytest.mark.parametrize("batch_size", [np.int64(1), np.int32(2)])
def test_numpy_integer_batch_size_is_accepted(batch_size):
    """A numpy integer (e.g. from a config array) is an int; the result equals the Python-int call."""
    volume = np.stack([K, K * 2, K * 3])
    np.testing.assert_array_equal(reconstruct(volume, M, **ZF, batch_size=batch_size),
                                  reconstruct(volume, M, **ZF, batch_size=int(batch_size)))


def test_torch_complex128_returns_float64():
    out = reconstruct(torch.from_numpy(K.astype(np.complex128)), M, method="zero_filled")
    assert out.dtype == torch.float64


def test_big_endian_kspace_equals_native():
    big = K.astype(K.dtype.newbyteorder(">"))
    np.testing.assert_array_equal(reconstruct(big, M, **ZF), reconstruct(K, M, **ZF))


def test_read_only_kspace_gives_no_warning():
    ro = np.array(K)
    ro.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reconstruct(ro, M, **ZF)


@pytest.mark.parametrize(
    "kspace",
    [
        pytest.param(lambda: torch.view_as_real(torch.from_numpy(K)).bfloat16(), id="torch-bfloat16-real-view"),
        pytest.param(lambda: torch.from_numpy(K).to(torch.complex32), id="torch-complex32",
                     marks=pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental")),
        pytest.param(lambda: np.stack([K.real, K.imag], -1).astype(np.float16), id="numpy-float16-real-view"),
        pytest.param(lambda: np.asfortranarray(K), id="fortran-order"),
    ],
)
def test_low_precision_and_odd_layouts_give_float32(kspace):
    out = reconstruct(kspace(), M, **ZF)
    assert out.dtype in (np.float32, torch.float32) and out.shape == (H, W)
    ref = zero_filled_reference(K, M)
    np.testing.assert_allclose(np.asarray(out, dtype=np.float64), ref, rtol=2e-2, atol=2e-3 * ref.max())


def test_full_mask_of_single_column_kspace_is_used_as_is():
    """(H, 1) is the whole mask of (C, H, 1) k-space (its trailing dims), not a column layout."""
    kspace = K[:, :, 12:13]
    mask = np.zeros((H, 1), np.float32)
    mask[::2] = 1
    out = reconstruct(kspace, mask, **ZF)
    np.testing.assert_allclose(out, zero_filled_reference(kspace, mask), rtol=1e-4, atol=1e-7)


def test_single_coil_numpy_bool_accepted():
    out = reconstruct(K, **ZF, single_coil=np.bool_(True))
    assert out.shape == K.shape


# ---------------------------------------------------------------------------- class 3: geometry


@pytest.mark.parametrize(
    "shape", [(4, 1, 24), (4, 32, 1), (4, 1, 1), (1, 2, 2)], ids=["one-row", "one-column", "one-point", "2x2-one-coil"]
)
def test_zero_filled_on_tiny_grids_equals_reference(shape):
    kspace = phantom_kspace(coils=shape[0], height=32, width=24)[:, : shape[1], : shape[2]]
    out = reconstruct(kspace, method="zero_filled")
    np.testing.assert_allclose(out, zero_filled_reference(kspace, 1.0), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("method", ["sense", "cs", "tv"])
@pytest.mark.parametrize("shape", [(4, 1, 24), (4, 32, 1)], ids=["one-row", "one-column"])
def test_classical_on_one_line_is_finite(method, shape):
    kspace = phantom_kspace(coils=shape[0], height=32, width=24)[:, : shape[1], : shape[2]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no calibration region: coil-by-coil (warned)
        out = reconstruct(kspace, method=method)
    assert out.shape == shape[1:] and np.isfinite(out).all() and out.max() > 0


def test_min_kspace_size_lists_every_method():
    assert set(MIN_KSPACE_SIZE) == set(METHODS)


@pytest.mark.parametrize("method", ["cascade", "varnet"])
def test_kspace_models_at_their_minimum_size_are_finite(method):
    kspace = phantom_kspace(height=32, width=24)[:, :, 11:13]  # two columns
    out = reconstruct(kspace, method=method)
    assert out.shape == (32, 2) and np.isfinite(out).all()
