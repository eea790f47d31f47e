"""Bad input to recon.preprocess.augment: clear ValueError/TypeError naming the argument."""

from __future__ import annotations

import pytest
import torch

from recon.preprocess import augment as A

G = torch.Generator().manual_seed(0)
VOL = torch.rand(1, 8, 9, 10)
SLICE = torch.rand(1, 9, 10)

CONSTRUCTION = [
    (lambda: A.RandomFlip(p=1.5), ValueError, "p must be in \\[0, 1\\]"),
    (lambda: A.RandomFlip(p=-0.1), ValueError, "p must be in"),
    (lambda: A.RandomFlip(p="half"), TypeError, "p must be a probability"),
    (lambda: A.RandomAffine(degrees=-10), ValueError, "degrees must be non-negative"),
    (lambda: A.RandomAffine(degrees=(10, 5)), ValueError, "degrees ranges must have low <= high"),
    (lambda: A.RandomAffine(degrees=(1, 2, 3)), ValueError, "degrees must be a number, a pair"),
    (lambda: A.RandomAffine(scales=-0.1), ValueError, "scales must be non-negative"),
    (lambda: A.RandomAffine(scales=1.5), ValueError, "scales as one number"),
    (lambda: A.RandomAffine(scales=(-1, 2)), ValueError, "scales must be positive"),
    (lambda: A.RandomAffine(translation="big"), TypeError, "translation must be a number"),
    (lambda: A.Affine(scale=(1, 0, 1)), ValueError, "scale must be positive"),
    (lambda: A.Affine(rotation=(1, 2, 3, 4)), ValueError, "rotation must be a number or"),
    (lambda: A.Affine(matrix=torch.zeros(4, 4)), ValueError, "matrix must be finite and invertible"),
    (lambda: A.Affine(interpolation="spline"), ValueError, "interpolation must be one of"),
    (lambda: A.Affine(padding_mode="wrap"), ValueError, "padding_mode must be one of"),
    (lambda: A.Elastic(torch.zeros(3, 3, 3, 3)), ValueError, "displacement must be"),
    (lambda: A.Elastic([[0.0]]), TypeError, "displacement must be a tensor"),
    (lambda: A.RandomElastic(num_control_points=3), ValueError, "num_control_points must be >= 4"),
    (lambda: A.RandomElastic(max_displacement=-1), ValueError, "max_displacement must be non-negative"),
    (lambda: A.RandomElastic(locked_borders=3), ValueError, "locked_borders must be 0, 1 or 2"),
    (lambda: A.Flip(axes=5), ValueError, "axes must index spatial axes"),
    (lambda: A.Flip(axes="x"), TypeError, "axes must be an int"),
    (lambda: A.CenterCrop(size=0), ValueError, "size must be positive"),
    (lambda: A.Crop(start=-1, size=2), ValueError, "start must be non-negative"),
    (lambda: A.Pad(padding=-1), ValueError, "padding must be non-negative"),
    (lambda: A.GaussianNoise(snr=0), ValueError, "snr must be a positive number"),
    (lambda: A.RicianNoise(snr=(20, 10)), ValueError, "snr must be"),
    (lambda: A.RandomGamma(log_gamma=-1), ValueError, "log_gamma"),
    (lambda: A.PercentileClip(90, 10), ValueError, "lower and upper"),
    (lambda: A.MinMax((1, 0)), ValueError, "out_range"),
    (lambda: A.Ghosting(num_ghosts=1, intensity=0.5), ValueError, "num_ghosts must be >= 2"),
    (lambda: A.Ghosting(num_ghosts=4, intensity=1.5), ValueError, "intensity must be in \\[0, 1\\]"),
    (lambda: A.Ghosting(num_ghosts=4, intensity=0.5, axis=0), ValueError, "axis must be -1"),
    (lambda: A.Spike([(0.7, 0.0)], 1.0), ValueError, "positions must be in"),
    (lambda: A.Gibbs(fraction=0), ValueError, "fraction must be > 0"),
    (lambda: A.Gibbs(fraction=1.5), ValueError, "fraction must be in \\(0, 1\\]"),
    (lambda: A.Motion([1.0], [[0, 0]], [1.5]), ValueError, "times must be sorted fractions"),
    (lambda: A.Undersample(), ValueError, "exactly one of mask and mask_func"),
    (lambda: A.Undersample(mask_func=3), TypeError, "mask_func must be callable"),
    (lambda: A.Compose(A.RandomFlip()), TypeError, "transforms must be a list"),
    (lambda: A.Compose([A.RandomFlip(), "flip"]), TypeError, "transforms\\[1\\] must be"),
    (lambda: A.sample_generator(-1, 0), ValueError, "seed must be >= 0"),
]


@pytest.mark.parametrize("make, exc, match", CONSTRUCTION)
def test_bad_construction(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


CALLS = [
    # a 2-D tensor (no channel) / 3-D-only parameters on a 2-D slice
    (A.RandomAffine(), torch.rand(9, 10), {}, ValueError, "sample must be \\(C, H, W\\) or \\(C, D, H, W\\), got 2-D"),
    (A.Affine(rotation=(0, 0, 10)), SLICE, {}, ValueError, "rotation has 3 values.*sample is 2-D"),
    (A.Elastic(torch.zeros(5, 5, 5, 3)), SLICE, {}, ValueError, "displacement is for 3-D data but the sample is 2-D"),
    (A.RandomAffine(degrees=(0, 1, 0, 1, 0, 1)), SLICE, {}, ValueError, "degrees gives 3 ranges"),
    (A.Affine(rotation=(0, 0, 10), interpolation="cubic"), VOL, {}, ValueError, "cubic"),
    (A.RandomAffine(), torch.rand(1, 1, 1, 8, 9, 10), {}, ValueError, "sample must be"),
    (A.RandomAffine(), torch.rand(2, 1, 8, 9, 10), {}, ValueError, "pass batched=True"),
    # paired samples
    (A.RandomAffine(), {"t1": VOL, "t2": torch.rand(1, 8, 9, 11)}, {}, ValueError, "keys \\['t1', 't2'\\] differ"),
    (A.RandomAffine(labels=("seg",)), {"t1": VOL}, {}, ValueError, "labels names keys \\['seg'\\]"),
    (A.RandomAffine(), {"t1": VOL.numpy()}, {}, TypeError, "sample\\['t1'\\] must be a torch.Tensor"),
    (A.RandomAffine(), {"t1": VOL, "affine": torch.eye(3)}, {}, ValueError, "sample\\['affine'\\] must be \\(4, 4\\)"),
    (A.RandomAffine(), [VOL], {}, TypeError, "sample must be a torch.Tensor or a dict"),
    (A.RandomAffine(), torch.rand(1, 8, 9, 10, dtype=torch.complex64), {}, TypeError, "must be a real tensor"),
    # crops
    (A.CenterCrop((20, 4, 4)), VOL, {}, ValueError, "size \\(20, 4, 4\\) is larger than the spatial shape"),
    (A.RandomCrop(11), VOL, {}, ValueError, "size .* is larger than"),
    (A.Crop((5, 0, 0), (4, 4, 4)), VOL, {}, ValueError, "exceeds the spatial shape"),
    (A.CenterCrop((4, 4)), VOL, {}, ValueError, "size has 2 entries but the sample is 3-D"),
    # generators
    (A.RandomAffine(), VOL, {"generator": 0}, TypeError, "generator must be a torch.Generator"),
    (A.RandomAffine(), torch.rand(1, 8, 9, 10, device="meta"), {"generator": G}, ValueError, "generator must be on the data's device type"),
    (A.RandomAffine(), VOL, {"batched": "yes"}, TypeError, "batched must be a bool"),
]


@pytest.mark.parametrize("transform, sample, kwargs, exc, match", CALLS)
def test_bad_call(transform, sample, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        transform(sample, **kwargs)


def test_bad_replay_params():
    t = A.RandomAffine()
    with pytest.raises(TypeError, match="params must be the dict"):
        t.replay(VOL, [1, 2])
    with pytest.raises(ValueError, match="lack the entries"):
        t.replay(VOL, {"rotation": torch.zeros(1, 3)})
    with pytest.raises(ValueError, match="params for Compose must be the list"):
        A.Compose([t]).replay(VOL, {})


def test_bad_function_arguments():
    k = torch.randn(1, 2, 8, 8, 2)
    with pytest.raises(ValueError, match="sigma must be >= 0"):
        A.rician_noise(torch.ones(4), -1.0, G)
    with pytest.raises(TypeError, match="image must be a floating-point tensor"):
        A.rician_noise(torch.ones(4, dtype=torch.long), 1.0, G)
    with pytest.raises(ValueError, match="mask of shape"):
        A.undersample(k, torch.ones(1, 1, 7, 1))
    with pytest.raises(ValueError, match="rotations, translations and times"):
        A.rigid_motion(k, [1.0, 2.0], [[0, 0]], [0.5])
    with pytest.raises(ValueError, match="kspace must have at least 3 dimensions"):
        A.ghosting(torch.randn(8, 8), 4, 0.5)
