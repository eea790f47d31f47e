"""Tiny fastMRI-format data for the training tests: 3 volumes x 2 slices, 4 coils, 32 x 32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from recon.data import SimulationConfig, simulate_multicoil, write_simulated
from tests.conftest import make_phantom

TINY_VARNET = {"num_cascades": 2, "chans": 4, "pools": 2, "sens_chans": 2, "sens_pools": 1}


def _phantoms(rng: np.random.Generator, slices: int, size: int = 32) -> np.ndarray:
    """The shared phantom's magnitude (tests/conftest.py) times a random smooth texture per slice:
    positive images that differ from slice to slice and volume to volume."""
    base = np.abs(make_phantom(size, size, 1, noise=0.0).image)
    return np.stack([base * (0.5 + gaussian_filter(rng.random((size, size)), 2.0)) for _ in range(slices)]).astype(np.float32)


def write_tiny_split(folder: Path, seed: int, volumes: int = 3, slices: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    config = SimulationConfig(num_coils=4, snr=60.0)
    for v in range(volumes):
        sim = simulate_multicoil(_phantoms(rng, slices), config, seed=seed * 100 + v)
        write_simulated(folder / f"vol{v}.h5", sim, acquisition="SIM", patient_id=f"p{v}")
    return folder


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny_fastmri")
    return {
        "train": write_tiny_split(root / "train", seed=1),
        "val": write_tiny_split(root / "val", seed=2, volumes=2),
    }


@pytest.fixture
def tiny_config(tiny_data, tmp_path):
    from recon.train import TrainConfig

    def make(**changes):
        settings = dict(
            model="varnet",
            model_kwargs=dict(TINY_VARNET),
            model_impl="recon",
            train_data=str(tiny_data["train"]),
            val_data=str(tiny_data["val"]),
            center_fractions=(0.25,),
            accelerations=(2,),
            epochs=1,
            lr=1e-3,
            seed=7,
            output_dir=str(tmp_path / "run"),
            progress=False,
            num_threads=1,
        )
        settings.update(changes)
        return TrainConfig(**settings)

    return make
