"""Tiny fastMRI-format data for the training tests: 3 volumes x 2 slices, 4 coils, 32 x 32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from recon.data import SimulationConfig, simulate_multicoil, write_simulated

TINY_VARNET = {"num_cascades": 2, "chans": 4, "pools": 2, "sens_chans": 2, "sens_pools": 1}


def _phantoms(rng: np.random.Generator, slices: int, size: int = 32) -> np.ndarray:
    """Smooth random blobs inside a disc: positive magnitude images."""
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    disc = (yy**2 + xx**2) < (0.42 * size) ** 2
    out = []
    for _ in range(slices):
        image = gaussian_filter(rng.random((size, size)), 2.0) * disc
        image[size // 3 : size // 2, size // 3 : 2 * size // 3] += 0.5
        out.append(image * disc)
    return np.stack(out).astype(np.float32)


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
