"""TrainConfig: every validated field raises a ValueError naming it; JSON round trip."""

from __future__ import annotations

import pytest

from recon.train import TrainConfig

BAD = [
    ("model", "vnet", r"TrainConfig\.model must be one of"),
    ("model_kwargs", ["chans", 4], r"TrainConfig\.model_kwargs must be a dict"),
    ("model_kwargs", {"chans": object()}, r"TrainConfig\.model_kwargs: values must be"),
    ("model_impl", "lightning", r"TrainConfig\.model_impl must be one of"),
    ("train_data", "", r"TrainConfig\.train_data must be"),
    ("val_data", 3, r"TrainConfig\.val_data must be"),
    ("challenge", "triplecoil", r"TrainConfig\.challenge must be"),
    ("data_cache", 5, r"TrainConfig\.data_cache must be"),
    ("sample_rate", 0.0, r"TrainConfig\.sample_rate must be a number in \(0, 1\]"),
    ("sample_rate", 1.5, r"TrainConfig\.sample_rate must be"),
    ("mask_type", "spiral", r"TrainConfig\.mask_type must be one of"),
    ("center_fractions", (), r"TrainConfig\.center_fractions must be a non-empty sequence"),
    ("center_fractions", "0.08", r"TrainConfig\.center_fractions must be a non-empty sequence"),
    ("center_fractions", (0.08, 1.2), r"TrainConfig\.center_fractions must be fractions in \(0, 1\)"),
    ("accelerations", (4, 0.5), r"TrainConfig\.accelerations must be factors >= 1"),
    ("accelerations", (4, float("nan")), r"TrainConfig\.accelerations must be a non-empty sequence of numbers"),
    ("loss", "mse", r"TrainConfig\.loss must be one of"),
    ("l1_weight", -1.0, r"TrainConfig\.l1_weight must be a number >= 0"),
    ("lr", 0.0, r"TrainConfig\.lr must be a positive number"),
    ("lr", "1e-3", r"TrainConfig\.lr must be a positive number"),
    ("lr_gamma", -0.1, r"TrainConfig\.lr_gamma must be a positive number"),
    ("weight_decay", -1e-4, r"TrainConfig\.weight_decay must be a number >= 0"),
    ("grad_clip", 0.0, r"TrainConfig\.grad_clip must be a positive number or None"),
    ("lr_step_size", 0, r"TrainConfig\.lr_step_size must be an int >= 1"),
    ("epochs", 2.5, r"TrainConfig\.epochs must be an int >= 1"),
    ("epochs", True, r"TrainConfig\.epochs must be an int >= 1"),
    ("batch_size", 0, r"TrainConfig\.batch_size must be an int >= 1"),
    ("val_every", -1, r"TrainConfig\.val_every must be an int >= 1"),
    ("max_steps", 0, r"TrainConfig\.max_steps must be an int >= 1 or None"),
    ("num_workers", -1, r"TrainConfig\.num_workers must be an int >= 0"),
    ("seed", -1, r"TrainConfig\.seed must be an int in \[0, 2\*\*32\)"),
    ("seed", 2**32, r"TrainConfig\.seed must be an int"),
    ("output_dir", "", r"TrainConfig\.output_dir must be a folder path"),
    ("resume", "yes", r"TrainConfig\.resume must be True or False"),
    ("device", "tpu", r"TrainConfig\.device must be one of"),
    ("backend", "mpi", r"TrainConfig\.backend must be one of"),
    ("num_threads", 0, r"TrainConfig\.num_threads must be an int >= 1 or None"),
    ("progress", "auto", r"TrainConfig\.progress must be True, False or None"),
]


@pytest.mark.parametrize("field,value,match", BAD, ids=[f"{f}={v!r}" for f, v, _ in BAD])
def test_bad_field_names_the_field(field, value, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{field: value})


def test_fraction_and_acceleration_lengths_must_match():
    with pytest.raises(ValueError, match=r"center_fractions and TrainConfig\.accelerations must have the same length"):
        TrainConfig(center_fractions=(0.08,), accelerations=(4, 8))


def test_varnet_needs_multicoil():
    with pytest.raises(ValueError, match=r"TrainConfig\.challenge must be 'multicoil' for model='varnet'"):
        TrainConfig(model="varnet", challenge="singlecoil")


def test_fastmri_impl_has_no_cascade():
    with pytest.raises(ValueError, match=r"TrainConfig\.model_impl must be 'recon' for model='cascade'"):
        TrainConfig(model="cascade", model_impl="fastmri")


def test_unknown_model_kwarg_is_named():
    # checked against the class signature
    with pytest.raises(ValueError, match=r"TrainConfig\.model_kwargs: VarNet has no arguments \['cascades'\]"):
        TrainConfig(model="varnet", model_kwargs={"cascades": 4})


def test_json_round_trip_and_normalisation():
    config = TrainConfig(
        model="unet", model_kwargs={"chans": 8}, accelerations=[4.0, 8], center_fractions=[0.08, 0.04]
    )
    assert config.accelerations == (4, 8) and all(isinstance(a, int) for a in config.accelerations)
    assert config.center_fractions == (0.08, 0.04)
    again = TrainConfig.from_json(config.to_json())
    assert again == config
    assert config.to_dict()["accelerations"] == [4, 8]


def test_from_dict_rejects_unknown_fields():
    with pytest.raises(ValueError, match=r"unknown TrainConfig fields \['learning_rate'\]"):
        TrainConfig.from_dict({"learning_rate": 1e-3})
    with pytest.raises(TypeError, match=r"data must be a dict"):
        TrainConfig.from_dict([("lr", 1e-3)])


def test_replace_validates():
    with pytest.raises(ValueError, match=r"TrainConfig\.epochs"):
        TrainConfig().replace(epochs=0)
