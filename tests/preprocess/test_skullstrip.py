"""recon.preprocess.brain_mask against Colin27's BET mask (another subject than the MNI152 template)."""

from __future__ import annotations

import numpy as np
import pytest

from recon.preprocess import brain_mask, resample
from recon.preprocess.skullstrip import BrainTemplate, default_template

from preprocess_helpers import rigid_about

pytest.importorskip("SimpleITK")


def dice(a, b):
    return 2.0 * np.sum(a & b) / (np.sum(a) + np.sum(b))


def test_default_template_is_bundled():
    t = default_template()
    assert t.image.shape == t.brain.shape == (99, 117, 95)
    assert 0.0 <= t.brain.min() and t.brain.max() <= 1.0
    np.testing.assert_allclose(np.linalg.norm(t.affine[:3, :3], axis=0), 2.0)
    # about 1.8 litres of brain in MNI space
    assert 1.6e6 < t.brain.sum() * 8.0 < 2.0e6


def test_default_template_follows_recon_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("RECON_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="brain template not found"):
        default_template()
    monkeypatch.setenv("RECON_DATA_DIR", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="RECON_DATA_DIR"):
        default_template()


@pytest.mark.slow
def test_colin27_at_2mm_moved(colin, colin_bet_mask):
    """Colin27 downsampled to 2 mm and placed 12 degrees / 14 mm off MNI: Dice >= 0.9 vs BET."""
    volume, affine = colin
    small, small_affine = resample(volume, affine, 2.0, order=1)
    reference, _ = resample(colin_bet_mask.astype(np.uint8), affine, 2.0, order=0)
    center = small_affine @ np.r_[(np.array(small.shape) - 1) / 2, 1]
    moved_affine = rigid_about(center[:3], [(0, 12.0)], [5.0, -8.0, 10.0]) @ small_affine
    mask = brain_mask(small, moved_affine)
    assert mask.dtype == bool and mask.shape == small.shape
    assert dice(mask, reference > 0) >= 0.90


@pytest.mark.slow
def test_colin27_full_resolution(colin, colin_bet_mask):
    volume, affine = colin
    mask, prob = brain_mask(volume, affine, return_probability=True)
    assert prob.dtype == np.float32 and 0 <= prob.min() and prob.max() <= 1
    assert dice(mask, colin_bet_mask) >= 0.90


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(volume=np.ones((5, 5))), ValueError, "volume must be a 3-D volume"),
        (dict(affine=np.diag([1.0, 1.0, 0.0, 1.0])), ValueError, "affine is not invertible"),
        (dict(threshold=1.0), ValueError, "threshold must be in"),
        (dict(transform="elastic"), ValueError, "transform must be"),
        (dict(template="mni"), TypeError, "template must be a BrainTemplate"),
    ],
)
def test_bad_arguments(kwargs, exc, match):
    args = dict(volume=np.ones((6, 6, 6)), affine=np.eye(4)) | kwargs
    with pytest.raises(exc, match=match):
        brain_mask(args.pop("volume"), args.pop("affine"), **args)


def test_custom_template_object():
    t = default_template()
    custom = BrainTemplate(image=t.image, brain=t.brain, affine=t.affine)
    # the template registered to itself: its own mask back
    mask = brain_mask(t.image, t.affine, template=custom)
    assert dice(mask, t.brain > 0.5) > 0.95
