"""Draw docs/images/phantom_contrasts.png: one phantom subject in every contrast (top), and
six subjects (new anatomies) in random contrasts (bottom). Deterministic (fixed seeds)."""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recon.data.io import atomic_path  # noqa: E402
from recon.data.phantom import SEQUENCES, Subject  # noqa: E402


def main() -> None:
    fig = Figure(figsize=(13, 4.8), dpi=70)
    axes = fig.subplots(2, len(SEQUENCES))
    subject = Subject(seed=11, anatomy="mni152", z_range=(98, 99))
    for ax, sequence in zip(axes[0], SEQUENCES):
        image = subject.contrast(sequence, field_strength=3.0)
        ax.imshow(np.rot90(image.volume[:, :, 0]), cmap="gray")
        ax.set_title(f"{sequence} (3 T)", fontsize=9)
    rng = np.random.default_rng(0)
    for k, ax in enumerate(axes[1]):
        seed = 100 + k
        sequence = str(rng.choice(list(SEQUENCES)))
        field = float(rng.choice([1.5, 3.0]))
        s = Subject(seed=seed, z_range=(90, 91))
        ax.imshow(np.rot90(s.contrast(sequence, field_strength=field).volume[:, :, 0]), cmap="gray")
        ax.set_title(f"seed {seed}: {s.anatomy}, {sequence}, {field:g} T", fontsize=8)
    for ax in axes.ravel():
        ax.axis("off")
    fig.tight_layout()
    out = ROOT / "docs" / "images" / "phantom_contrasts.png"
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png")
    print(out)


if __name__ == "__main__":
    main()
