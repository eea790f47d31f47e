"""recon.masks: fastMRI parity (against the installed fastmri 0.3.0), golden masks, the
variable-density masks, random-state hygiene and argument checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recon import masks
from recon.masks import (
    MASK_TYPES,
    EquispacedMaskFractionFunc,
    EquiSpacedMaskFunc,
    GaussianMaskFunc1D,
    GaussianMaskFunc2D,
    MagicMaskFractionFunc,
    MagicMaskFunc,
    PoissonDiscMaskFunc2D,
    RandomMaskFunc,
    apply_mask,
    create_mask_for_mask_type,
)

try:  # only the fastMRI parity tests need the fastmri package; the rest run without it
    import fastmri.data.subsample as fastmri_subsample
    import fastmri.data.transforms as fastmri_transforms
except ImportError:
    fastmri_subsample = fastmri_transforms = None
needs_fastmri = pytest.mark.skipif(fastmri_subsample is None, reason="fastMRI parity test: needs the fastmri package")

FASTMRI_TYPES = ["random", "equispaced", "equispaced_fraction", "magic", "magic_fraction"]
VD_TYPES = ["gaussian1d", "gaussian2d", "poisson2d"]
FILE_SEED = tuple(map(ord, "file1000001.h5"))
KNEE_SHAPE = (1, 640, 368, 2)


def columns(mask: torch.Tensor) -> list[int]:
    return torch.nonzero(mask.reshape(-1)).reshape(-1).tolist()


def same_rng_state(a: np.random.RandomState, b: np.random.RandomState) -> bool:
    sa, sb = a.get_state(), b.get_state()
    return sa[0] == sb[0] and np.array_equal(sa[1], sb[1]) and sa[2:] == sb[2:]


# --------------------------------------------------------------------------------------------
# golden masks (numbers computed once with fastMRI's own code; no fastmri needed to check)
# --------------------------------------------------------------------------------------------


def test_golden_file1000001():
    fractions, accels = [0.08, 0.04], [4, 8]

    mask, num_low = create_mask_for_mask_type("equispaced_fraction", fractions, accels)(
        KNEE_SHAPE, None, FILE_SEED
    )
    assert tuple(mask.shape) == (1, 1, 368, 1) and mask.dtype == torch.float32
    assert int(mask.sum()) == 45 and columns(mask)[:4] == [9, 20, 32, 43]

    mask, num_low = create_mask_for_mask_type("equispaced", fractions, accels)(
        KNEE_SHAPE, None, FILE_SEED
    )
    assert int(mask.sum()) == 59 and columns(mask)[:3] == [4, 12, 20]

    mask, num_low = create_mask_for_mask_type("random", fractions, accels)(
        KNEE_SHAPE, None, FILE_SEED
    )
    # 8x drawn: round(368 * 0.04) = 15 centre columns, 48 columns in all
    assert num_low == 15 and int(mask.sum()) == 48
    assert columns(mask)[:5] == [2, 4, 9, 22, 24]
    centre = (368 - 15 + 1) // 2
    assert mask.reshape(-1)[centre : centre + 15].eq(1).all()


# --------------------------------------------------------------------------------------------
# parity with fastmri.data.subsample
# --------------------------------------------------------------------------------------------

WIDTHS = [17, 32, 33, 100, 101, 368, 372]
SEEDS = [None, 0, 1234, (7,), (3, 1, 4), FILE_SEED]
OFFSETS = [None, 0, 1, 3]


@needs_fastmri
@pytest.mark.parametrize("mask_type", FASTMRI_TYPES)
def test_parity_with_fastmri(mask_type):
    """Same masks, num_low and object stream over widths (odd/even), seeds, offsets, repeats."""
    for width in WIDTHS:
        for leading in [(1,), (3, 2)]:
            shape = leading + (24, width, 2)
            theirs = fastmri_subsample.create_mask_for_mask_type(mask_type, [0.08, 0.04], [4, 8])
            ours = create_mask_for_mask_type(mask_type, [0.08, 0.04], [4, 8])
            theirs.rng.seed(width)
            ours.rng.seed(width)
            for seed in SEEDS:
                for offset in OFFSETS:
                    for _ in range(2):  # a repeat: unseeded calls continue the stream
                        expected, expected_low = theirs(shape, offset, seed)
                        got, got_low = ours(shape, offset, seed)
                        assert got.dtype == expected.dtype == torch.float32
                        assert got.shape == expected.shape
                        assert torch.equal(got, expected), (mask_type, shape, seed, offset)
                        assert got_low == expected_low and isinstance(got_low, int)
            assert same_rng_state(ours.rng, theirs.rng)


@needs_fastmri
@pytest.mark.parametrize(
    "ours_cls, theirs_name",
    [
        (RandomMaskFunc, "RandomMaskFunc"),
        (EquiSpacedMaskFunc, "EquiSpacedMaskFunc"),
        (EquispacedMaskFractionFunc, "EquispacedMaskFractionFunc"),
        (MagicMaskFunc, "MagicMaskFunc"),
        (MagicMaskFractionFunc, "MagicMaskFractionFunc"),
    ],
)
def test_parity_constructor_seed_and_any_combination(ours_cls, theirs_name):
    theirs_cls = getattr(fastmri_subsample, theirs_name)
    for kwargs in [
        dict(center_fractions=[0.08, 0.04], accelerations=[4, 8], seed=42),
        dict(center_fractions=[0.08], accelerations=[4, 6, 8], allow_any_combination=True, seed=3),
        dict(center_fractions=[0.1, 0.05, 0.02], accelerations=[2, 10], allow_any_combination=True, seed=(9, 9)),
    ]:
        theirs, ours = theirs_cls(**kwargs), ours_cls(**kwargs)
        for width in [31, 64, 320, 369]:
            for seed in [None, None, 5]:
                got, got_low = ours((1, 16, width, 2), None, seed)
                try:
                    expected, expected_low = theirs((1, 16, width, 2), None, seed)
                except ValueError:
                    # fastMRI's magic_fraction fails when the centre fills the target
                    # (spacing 0), after the same draws; ours returns the centre alone.
                    assert theirs_name == "MagicMaskFractionFunc"
                    assert int(got.sum()) == got_low
                    continue
                assert torch.equal(got, expected) and got_low == expected_low
        assert same_rng_state(ours.rng, theirs.rng)


@needs_fastmri
@pytest.mark.parametrize("mask_type", ["random", "equispaced_fraction", "magic_fraction"])
def test_parity_fractional_accelerations(mask_type):
    theirs = fastmri_subsample.create_mask_for_mask_type(mask_type, [0.1, 0.07], [2.5, 5.5])
    ours = create_mask_for_mask_type(mask_type, [0.1, 0.07], [2.5, 5.5])
    for width in [50, 99, 368]:
        for seed in [1, 2, FILE_SEED]:
            expected, expected_low = theirs((1, 8, width, 2), None, seed)
            got, got_low = ours((1, 8, width, 2), None, seed)
            assert torch.equal(got, expected) and got_low == expected_low


@needs_fastmri
def test_parity_apply_mask_with_padding():
    generator = torch.Generator().manual_seed(0)
    kspace = torch.randn(3, 5, 20, 64, 2, generator=generator)
    kspace[0, 0, 0, 0, 0] = -0.0
    for mask_type in FASTMRI_TYPES:
        theirs = fastmri_subsample.create_mask_for_mask_type(mask_type, [0.08], [4])
        ours = create_mask_for_mask_type(mask_type, [0.08], [4])
        for padding in [None, (5, 59), [0, 64]]:
            for seed in [3, FILE_SEED]:
                e_data, e_mask, e_low = fastmri_transforms.apply_mask(kspace, theirs, seed=seed, padding=padding)
                g_data, g_mask, g_low = apply_mask(kspace, ours, seed=seed, padding=padding)
                assert torch.equal(g_data, e_data) and torch.equal(g_mask, e_mask) and g_low == e_low
                # the mask does not depend on leading dims, and -0.0 is turned into 0.0
                assert tuple(g_mask.shape) == (1, 1, 1, 64, 1)
                assert not torch.signbit(g_data[g_data == 0]).any()


def test_apply_mask_padding_zeroes_outside_columns():
    kspace = torch.ones(2, 8, 40, 2, dtype=torch.float64)
    mask_func = EquiSpacedMaskFunc([0.25], [2])
    masked, mask, _ = apply_mask(kspace, mask_func, offset=0, padding=(6, 30))
    cols = columns(mask)
    assert min(cols) >= 6 and max(cols) < 30
    assert masked.dtype == torch.float64
    assert torch.equal(masked[..., :6, :], torch.zeros_like(masked[..., :6, :]))
    assert torch.equal(masked[..., 30:, :], torch.zeros_like(masked[..., 30:, :]))


# --------------------------------------------------------------------------------------------
# seeds and random state
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mask_type", FASTMRI_TYPES + VD_TYPES)
def test_no_global_random_state_touched(mask_type):
    np_before = np.random.get_state()
    torch_before = torch.random.get_rng_state()
    mask_func = create_mask_for_mask_type(mask_type, [0.08, 0.04], [4, 8])
    for seed in [None, 0, FILE_SEED]:
        mask_func((1, 40, 36, 2), None, seed)
        apply_mask(torch.zeros(2, 40, 36, 2), mask_func, seed=seed)
    np_after = np.random.get_state()
    assert np_before[0] == np_after[0] and np.array_equal(np_before[1], np_after[1])
    assert np_before[2:] == np_after[2:]
    assert torch.equal(torch_before, torch.random.get_rng_state())


@pytest.mark.parametrize("mask_type", FASTMRI_TYPES + VD_TYPES)
def test_seeded_call_is_pure_and_keeps_own_stream(mask_type):
    shape = (1, 32, 30, 2)
    a = create_mask_for_mask_type(mask_type, [0.1], [4], seed=7)
    b = create_mask_for_mask_type(mask_type, [0.1], [4], seed=7)
    first_a, _ = a(shape)
    seeded_1, low_1 = b(shape, seed=FILE_SEED)  # must not advance b's own stream
    first_b, _ = b(shape)
    seeded_2, low_2 = b(shape, seed=FILE_SEED)
    assert torch.equal(first_a, first_b)
    assert torch.equal(seeded_1, seeded_2) and low_1 == low_2
    assert same_rng_state(a.rng, b.rng)


def test_tuple_seed_equals_numpy_array_seed():
    mask_func = GaussianMaskFunc1D([0.08], [4])
    reference = np.random.RandomState(np.array(FILE_SEED, dtype=np.uint32))
    mask_func.rng.seed(FILE_SEED)
    assert same_rng_state(mask_func.rng, reference)


# --------------------------------------------------------------------------------------------
# degenerate cases where fastMRI raises
# --------------------------------------------------------------------------------------------


def test_equispaced_fraction_centre_covers_target():
    # round(40 * 0.5) = 20 centre columns already exceed 40 / 4: fastMRI divides by a
    # non-positive number; here the mask is the centre alone.
    mask, num_low = EquispacedMaskFractionFunc([0.5], [4], seed=0)((1, 4, 40, 2))
    assert num_low == 20
    assert columns(mask) == list(range(10, 30))


def test_magic_fraction_no_outer_lines():
    # round(10 / 8) = 1 target column = the single centre column; fastMRI fails (spacing 0).
    mask, num_low = MagicMaskFractionFunc([0.04], [8], seed=0)((1, 4, 10, 2))
    assert num_low == 1 and columns(mask) == [5]


def test_random_full_centre():
    mask, num_low = RandomMaskFunc([1.0], [4], seed=0)((1, 4, 12, 2))
    assert num_low == 12 and mask.eq(1).all()


# --------------------------------------------------------------------------------------------
# variable-density masks
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [64, 65, 368])
@pytest.mark.parametrize("fraction, accel", [(0.08, 4), (0.04, 8), (0.3, 2.5)])
def test_gaussian1d_counts_and_centre(width, fraction, accel):
    mask, num_low = GaussianMaskFunc1D([fraction], [accel], seed=1)((2, 16, width, 2))
    assert tuple(mask.shape) == (1, 1, width, 1) and mask.dtype == torch.float32
    assert num_low == round(width * fraction)
    start = (width - num_low + 1) // 2
    flat = mask.reshape(-1)
    assert flat[start : start + num_low].eq(1).all()
    assert int(flat.sum()) == max(round(width / accel), num_low)
    assert set(flat.unique().tolist()) <= {0.0, 1.0}


def test_gaussian1d_density_is_centre_weighted():
    width, draws = 200, 400
    mask_func = GaussianMaskFunc1D([0.04], [4], seed=0, std=0.15)
    counts = sum(mask_func((1, 4, width, 2))[0].reshape(-1) for _ in range(draws))
    centre = width // 2
    near = counts[centre + 10 : centre + 30].mean()  # outside the 8-column centre
    far = counts[:20].mean()
    # Gaussian weight ratio between ~20 and ~90 columns from the centre is exp(4.9) ~ 130
    assert near > 10 * far


@pytest.mark.parametrize("shape", [(1, 64, 48, 2), (3, 2, 41, 37, 2)])
def test_gaussian2d_counts_and_centre(shape):
    height, width = shape[-3], shape[-2]
    mask, num_low = GaussianMaskFunc2D([0.1], [5], seed=2)(shape)
    expected_shape = [1] * len(shape)
    expected_shape[-3:-1] = [height, width]
    assert list(mask.shape) == expected_shape and mask.dtype == torch.float32
    low_rows = round(height * 0.1)
    assert num_low == round(width * 0.1)
    image = mask.reshape(height, width)
    r0, c0 = (height - low_rows + 1) // 2, (width - num_low + 1) // 2
    assert image[r0 : r0 + low_rows, c0 : c0 + num_low].eq(1).all()
    assert int(image.sum()) == round(height * width / 5)


@pytest.mark.parametrize("shape, accel", [((1, 48, 40, 2), 4), ((2, 33, 27, 2), 3)])
def test_poisson2d_acceleration_and_centre(shape, accel):
    height, width = shape[-3], shape[-2]
    mask_func = PoissonDiscMaskFunc2D([0.1], [accel], seed=0)
    mask, num_low = mask_func(shape)
    assert tuple(mask.shape) == (1, height, width, 1) and mask.dtype == torch.float32
    image = mask.reshape(height, width)
    low_rows = round(height * 0.1)
    assert num_low == round(width * 0.1)
    r0, c0 = (height - low_rows + 1) // 2, (width - num_low + 1) // 2
    assert image[r0 : r0 + low_rows, c0 : c0 + num_low].eq(1).all()
    achieved = height * width / float(image.sum())
    # the slope search stops within 0.1 of the target, or accepts the closest within 5%
    assert abs(achieved - accel) < max(0.1, 0.05 * accel)
    again, _ = PoissonDiscMaskFunc2D([0.1], [accel], seed=0)(shape)
    assert torch.equal(mask, again)
    other, _ = mask_func(shape)  # the stream moved on: a different draw
    assert not torch.equal(mask, other)


def test_poisson2d_unit_acceleration_is_full():
    mask, _ = PoissonDiscMaskFunc2D([0.1], [1], seed=0)((1, 12, 10, 2))
    assert mask.eq(1).all()


@pytest.mark.parametrize("mask_type", VD_TYPES)
def test_variable_density_seeds_reproduce_and_differ(mask_type):
    mask_func = create_mask_for_mask_type(mask_type, [0.08, 0.04], [4, 8])
    a, _ = mask_func((1, 40, 36, 2), seed=FILE_SEED)
    b, _ = mask_func((1, 40, 36, 2), seed=FILE_SEED)
    c, _ = mask_func((1, 40, 36, 2), seed=(1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_apply_mask_with_2d_mask():
    kspace = torch.ones(4, 32, 30, 2)
    masked, mask, _ = apply_mask(kspace, GaussianMaskFunc2D([0.1], [4]), seed=0, padding=(2, 28))
    assert tuple(mask.shape) == (1, 32, 30, 1)
    assert torch.equal(masked, kspace * mask)
    assert mask[..., :2, :].eq(0).all() and mask[..., 28:, :].eq(0).all()


def test_mask_types_registry():
    assert set(MASK_TYPES) == set(FASTMRI_TYPES + VD_TYPES)
    for name, cls in MASK_TYPES.items():
        assert type(create_mask_for_mask_type(name, [0.08], [4])) is cls


# --------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------


def test_bad_mask_type():
    with pytest.raises(ValueError, match="mask_type must be one of"):
        create_mask_for_mask_type("spiral", [0.08], [4])
    with pytest.raises(ValueError, match="mask_type must be one of"):
        create_mask_for_mask_type(None, [0.08], [4])


@pytest.mark.parametrize("cls", list(MASK_TYPES.values()))
def test_constructor_checks(cls):
    with pytest.raises(ValueError, match="same length"):
        cls([0.08, 0.04], [4])
    with pytest.raises(ValueError, match="accelerations must be finite numbers >= 1"):
        cls([0.08], [0.5])
    with pytest.raises(ValueError, match=r"center_fractions must lie in \[0, 1\]"):
        cls([1.5], [4])
    with pytest.raises(ValueError, match="center_fractions must be a non-empty sequence"):
        cls([], [])
    with pytest.raises(ValueError, match="center_fractions must be a non-empty sequence"):
        cls(0.08, [4])
    with pytest.raises(ValueError, match="accelerations must be a non-empty sequence"):
        cls([0.08], ["4"])
    with pytest.raises(ValueError, match="seed must be None, an integer"):
        cls([0.08], [4], seed="abc")
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*32\)"):
        cls([0.08], [4], seed=-1)


@pytest.mark.parametrize("cls", [EquiSpacedMaskFunc, MagicMaskFunc])
def test_integer_accelerations_required(cls):
    with pytest.raises(ValueError, match="must be whole numbers"):
        cls([0.08], [2.5])
    cls([0.08], [4.0])  # whole-number floats are fine


@pytest.mark.parametrize("cls", [GaussianMaskFunc1D, GaussianMaskFunc2D, PoissonDiscMaskFunc2D])
def test_std_checked(cls):
    with pytest.raises(ValueError, match="std must be a positive finite number"):
        cls([0.08], [4], std=0)
    with pytest.raises(ValueError, match="std must be a positive finite number"):
        cls([0.08], [4], std=float("nan"))


@pytest.mark.parametrize("mask_type", FASTMRI_TYPES + VD_TYPES)
def test_call_checks(mask_type):
    mask_func = create_mask_for_mask_type(mask_type, [0.08], [4])
    with pytest.raises(ValueError, match="shape must be a sequence of at least 3"):
        mask_func((640, 368))
    with pytest.raises(ValueError, match="shape must be a sequence of at least 3"):
        mask_func((1, 0, 368, 2))
    with pytest.raises(ValueError, match="offset must be None or a non-negative int"):
        mask_func((1, 16, 16, 2), -1)
    with pytest.raises(ValueError, match="seed must be None, an integer"):
        mask_func((1, 16, 16, 2), None, 1.5)
    with pytest.raises(ValueError, match="seed must be None, an integer"):
        mask_func((1, 16, 16, 2), None, ())


def test_poisson2d_unreachable_acceleration():
    with pytest.raises(ValueError, match="PoissonDiscMaskFunc2D cannot reach acceleration"):
        PoissonDiscMaskFunc2D([0.5], [30], seed=0)((1, 8, 8, 2))


def test_apply_mask_checks():
    mask_func = RandomMaskFunc([0.08], [4], seed=0)
    with pytest.raises(TypeError, match="data must be a torch.Tensor"):
        apply_mask(np.zeros((2, 8, 8, 2)), mask_func)
    with pytest.raises(ValueError, match="data must have at least 3 dimensions"):
        apply_mask(torch.zeros(8, 2), mask_func)
    with pytest.raises(ValueError, match="last dimension of size 2"):
        apply_mask(torch.zeros(2, 8, 8), mask_func)
    with pytest.raises(ValueError, match="mask_func must be callable"):
        apply_mask(torch.zeros(2, 8, 8, 2), "random")
    with pytest.raises(ValueError, match="padding must be None or a pair of ints"):
        apply_mask(torch.zeros(2, 8, 8, 2), mask_func, padding=(1, 2, 3))
    with pytest.raises(ValueError, match="padding must be None or a pair of ints"):
        apply_mask(torch.zeros(2, 8, 8, 2), mask_func, padding=(1.5, 2))


def test_public_names():
    for name in masks.__all__:
        assert hasattr(masks, name)
