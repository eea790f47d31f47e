"""``recon.masks`` fed bad arguments: every mask type refuses them naming the argument (class 4)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recon.masks import MASK_TYPES, EquiSpacedMaskFunc, RandomMaskFunc, apply_mask, create_mask_for_mask_type
from reliability_helpers import raises_naming

TYPES = sorted(MASK_TYPES)
BAD_ACCELERATIONS = [float("inf"), float("nan"), 0, -4, 0.5, -float("inf")]


@pytest.mark.parametrize("acceleration", BAD_ACCELERATIONS, ids=str)
@pytest.mark.parametrize("mask_type", TYPES)
def test_bad_acceleration_refused_by_factory(mask_type, acceleration):
    with raises_naming(ValueError, "accelerations"):
        create_mask_for_mask_type(mask_type, [0.08], [acceleration])


@pytest.mark.parametrize("acceleration", [float("inf"), float("nan"), 0], ids=str)
@pytest.mark.parametrize("cls", [RandomMaskFunc, EquiSpacedMaskFunc])
def test_bad_acceleration_refused_by_constructor(cls, acceleration):
    with raises_naming(ValueError, "accelerations"):
        cls([0.08], [acceleration])


@pytest.mark.parametrize("mask_type", TYPES)
def test_shape_too_small_for_the_acceleration_raises(mask_type):
    """W = 4 columns (16 points) at acceleration 32: not one line at that rate (was an all-zero mask)."""
    func = create_mask_for_mask_type(mask_type, [0.0], [32], seed=0)
    with raises_naming(ValueError, "shape", "32"):
        func((1, 4, 4, 2), seed=0)


@pytest.mark.parametrize("mask_type", TYPES)
def test_every_mask_type_samples_something_on_a_normal_shape(mask_type):
    func = create_mask_for_mask_type(mask_type, [0.08], [4], seed=0)
    mask, num_low = func((1, 64, 48, 2), seed=1)
    assert mask.dtype == torch.float32 and mask.ndim == 4 and 0 < float(mask.mean()) < 1
    assert set(mask.unique().tolist()) <= {0.0, 1.0} and num_low == round(48 * 0.08)


def test_draw_that_samples_nothing_raises():
    """No centre and an offset past the last column: nothing sampled -> ValueError, not zeros."""
    func = EquiSpacedMaskFunc([0.0], [4], seed=0)
    with raises_naming(ValueError, "sampled no", "offset=9"):
        func((1, 8, 8, 2), offset=9)


def test_random_mask_without_centre_either_samples_or_raises():
    """Random draws with centre fraction 0 on 8 columns at 8x: never a silent all-zero mask."""
    func = RandomMaskFunc([0.0], [8], seed=0)
    outcomes = []
    for seed in range(30):
        try:
            mask, _ = func((1, 8, 8, 2), seed=seed)
        except ValueError as err:
            assert "sampled no" in str(err)
            outcomes.append(False)
        else:
            assert mask.sum() > 0
            outcomes.append(True)
    assert any(outcomes) and not all(outcomes)  # both happen over 30 seeds


ERRORS = [
    ("unknown-type", lambda: create_mask_for_mask_type("radial", [0.08], [4]), ["mask_type", "radial"]),
    ("type-not-str", lambda: create_mask_for_mask_type(4, [0.08], [4]), ["mask_type"]),
    ("fraction-nan", lambda: create_mask_for_mask_type("random", [float("nan")], [4]), ["center_fractions"]),
    ("fraction-negative", lambda: create_mask_for_mask_type("random", [-0.1], [4]), ["center_fractions"]),
    ("fraction-above-1", lambda: create_mask_for_mask_type("random", [1.5], [4]), ["center_fractions"]),
    ("fractions-str", lambda: create_mask_for_mask_type("random", "0.08", [4]), ["center_fractions"]),
    ("accelerations-str", lambda: create_mask_for_mask_type("random", [0.08], "4"), ["accelerations"]),
    ("accelerations-empty", lambda: create_mask_for_mask_type("random", [0.08], []), ["accelerations"]),
    ("accelerations-bool", lambda: create_mask_for_mask_type("random", [0.08], [True]), ["accelerations"]),
    ("lengths-differ", lambda: create_mask_for_mask_type("random", [0.08, 0.04], [4]), ["center_fractions", "accelerations"]),
    ("equispaced-fractional", lambda: create_mask_for_mask_type("equispaced", [0.08], [2.5]), ["accelerations", "whole"]),
    ("magic-fractional", lambda: create_mask_for_mask_type("magic", [0.08], [3.5]), ["accelerations", "whole"]),
    ("seed-negative", lambda: create_mask_for_mask_type("random", [0.08], [4], seed=-1), ["seed"]),
    ("seed-str", lambda: create_mask_for_mask_type("random", [0.08], [4], seed="a"), ["seed"]),
    ("call-seed-float", lambda: RandomMaskFunc([0.08], [4])((1, 16, 16, 2), seed=1.5), ["seed"]),
    ("shape-2d", lambda: RandomMaskFunc([0.08], [4])((16, 16)), ["shape"]),
    ("shape-zero", lambda: RandomMaskFunc([0.08], [4])((1, 0, 16, 2)), ["shape"]),
    ("shape-str", lambda: RandomMaskFunc([0.08], [4])("1,16,16,2"), ["shape"]),
    ("offset-negative", lambda: EquiSpacedMaskFunc([0.08], [4])((1, 16, 16, 2), offset=-1), ["offset"]),
    ("std-zero", lambda: MASK_TYPES["gaussian1d"]([0.08], [4], std=0), ["std"]),
    ("std-inf", lambda: MASK_TYPES["gaussian2d"]([0.08], [4], std=float("inf")), ["std"]),
    ("apply-numpy-data", lambda: apply_mask(np.zeros((4, 16, 16, 2)), RandomMaskFunc([0.08], [4])), ["data"]),
    ("apply-complex-data", lambda: apply_mask(torch.zeros(4, 16, 16, dtype=torch.complex64), RandomMaskFunc([0.08], [4])), ["data"]),
    ("apply-no-trailing-2", lambda: apply_mask(torch.zeros(4, 16, 16), RandomMaskFunc([0.08], [4])), ["data"]),
    ("apply-not-callable", lambda: apply_mask(torch.zeros(4, 16, 16, 2), "random"), ["mask_func"]),
    ("apply-bad-padding", lambda: apply_mask(torch.zeros(4, 16, 16, 2), RandomMaskFunc([0.08], [4]), padding=(1,)), ["padding"]),
]


@pytest.mark.parametrize("call, names", [pytest.param(c, n, id=i) for i, c, n in ERRORS])
def test_masks_refuse(call, names):
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    message = str(info.value)
    assert all(name in message for name in names), message


def test_seeded_call_leaves_global_rng_alone():
    state_np, state_torch = np.random.get_state()[1].copy(), torch.get_rng_state().clone()
    create_mask_for_mask_type("random", [0.08], [4])((1, 32, 32, 2), seed=3)
    assert (np.random.get_state()[1] == state_np).all() and torch.equal(torch.get_rng_state(), state_torch)
