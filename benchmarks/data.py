"""Benchmark of the data layer: reading cost over a bare h5py read, simulation cost vs VarNet.

Targets (ratios measured in one run, interleaved, median of repeats):

* reading a 15-coil 640 x 368 slice through ``SliceDataset`` + transform costs at most 1.3x
  the bare h5py read of the same slice (k-space and target, file opened and closed);
* simulating a 16-coil 320 x 320 slice takes under 1/10 of a VarNet forward on it
  (``recon.models.VarNet`` when present, else ``fastmri.models.VarNet``; fastMRI's
  default size: 12 cascades, 18 channels, 4 pools, sensitivity network 8 channels).

    python -m benchmarks.data [--device cpu|cuda] [--repeats 20]

The test file is written to a temporary folder and removed afterwards. Writes
``benchmarks/results/<device>/data.json`` and ``data.md``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np
import torch

if __package__ in (None, ""):  # run as a script: python benchmarks/data.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import markdown_table, save_results, sync, time_repeats  # noqa: E402

from recon.data import (  # noqa: E402
    SimulationConfig,
    SliceDataset,
    UnetDataTransform,
    VarNetDataTransform,
    make_ismrmrd_header,
    simulate_multicoil,
    write_fastmri_file,
)
from recon.data.simulate import _birdcage_cached  # noqa: E402
from recon.masks import create_mask_for_mask_type  # noqa: E402

try:  # the reference implementation, optional
    import fastmri.data as fastmri_data
    from fastmri.data import transforms as fastmri_transforms
except ImportError:  # pragma: no cover
    fastmri_data = None


def write_knee_like_file(folder: Path, slices: int = 4, coils: int = 15, shape=(640, 368)) -> Path:
    rng = np.random.default_rng(0)
    kspace = (rng.standard_normal((slices, coils, *shape), dtype=np.float32)
              + 1j * rng.standard_normal((slices, coils, *shape), dtype=np.float32)).astype(np.complex64)
    target = rng.random((slices, 320, 320), dtype=np.float32)
    header = make_ismrmrd_header(shape, (320, 320), num_coils=coils, num_slices=slices, pe_limits=(0, 339, 170))
    return write_fastmri_file(folder / "file1000000.h5", kspace, header, reconstruction_rss=target,
                              attrs={"acquisition": "CORPD_FBK", "max": 1.0, "norm": 1.0, "patient_id": "x"})


def bench_reading(repeats: int) -> tuple[list[list[object]], dict]:
    rows, payload = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        path = write_knee_like_file(Path(tmp))
        mask_func = create_mask_for_mask_type("equispaced_fraction", [0.08], [4])
        slice_index = 2

        def bare():
            with h5py.File(path, "r") as hf:
                return hf["kspace"][slice_index], hf["reconstruction_rss"][slice_index]

        raw = SliceDataset(path, "multicoil")
        varnet_transform = VarNetDataTransform(mask_func)
        varnet = SliceDataset(path, "multicoil", transform=varnet_transform)
        unet = SliceDataset(path, "multicoil", transform=UnetDataTransform("multicoil", mask_func))
        variants = {
            "SliceDataset (raw)": lambda: raw[slice_index],
            "SliceDataset + VarNetDataTransform": lambda: varnet[slice_index],
            "SliceDataset (raw), then VarNetDataTransform called (copying)": lambda: varnet_transform(*raw[slice_index]),
            "SliceDataset + UnetDataTransform": lambda: unet[slice_index],
        }
        if fastmri_data is not None:
            ref_varnet = fastmri_data.SliceDataset(tmp, "multicoil", transform=fastmri_transforms.VarNetDataTransform(mask_func))
            ref_unet = fastmri_data.SliceDataset(tmp, "multicoil", transform=fastmri_transforms.UnetDataTransform("multicoil", mask_func))
            variants["fastMRI SliceDataset + VarNetDataTransform"] = lambda: ref_varnet[slice_index]
            variants["fastMRI SliceDataset + UnetDataTransform"] = lambda: ref_unet[slice_index]
        # each variant is timed round-robin against its own bare read, so both see the same
        # machine load and allocator state (a large FFT in between changes both)
        times, ratios = {}, {}
        for name, fn in variants.items():
            slow = "Unet" in name
            pair = time_repeats({"bare": bare, name: fn}, torch.device("cpu"),
                                repeats=max(3, repeats // 4) if slow else repeats, warmup=2)
            times[name] = {"s": pair[name]["median_s"], "bare_s": pair["bare"]["median_s"],
                           "iqr_s": pair[name]["iqr_s"]}
            ratios[name] = times[name]["s"] / times[name]["bare_s"]
    for name, ratio in ratios.items():
        target = "<= 1.3" if name == "SliceDataset + VarNetDataTransform" else ""
        rows.append([name, times[name]["s"] * 1e3, times[name]["bare_s"] * 1e3, ratio, target])
    payload["reading"] = {"shape": [15, 640, 368], "times": times, "ratios_vs_bare": ratios}
    return rows, payload


def build_varnet(device: torch.device, cascades: int = 12) -> torch.nn.Module:
    try:
        from recon.models import VarNet  # type: ignore[attr-defined]

        source = "recon.models.VarNet"
    except ImportError:
        from fastmri.models import VarNet

        source = "fastmri.models.VarNet"
    model = VarNet(num_cascades=cascades, sens_chans=8, sens_pools=4, chans=18, pools=4).to(device).eval()
    model.source = source  # type: ignore[attr-defined]
    return model


def bench_simulation(device: torch.device, repeats: int, size: int = 320, cascades: int = 12) -> tuple[list[list[object]], dict]:
    image = np.asarray(np.random.default_rng(0).random((size, size)), dtype=np.float32)
    yy, xx = np.mgrid[:size, :size]
    image *= ((yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (0.44 * size) ** 2)
    config = SimulationConfig(num_coils=16, matrix_size=(size, size), snr=30.0)
    model = build_varnet(device, cascades)
    sim = simulate_multicoil(image, config, seed=0)
    kspace = torch.view_as_real(torch.from_numpy(sim.kspace)).to(device)  # (1, 16, 320, 320, 2)
    mask_func = create_mask_for_mask_type("equispaced_fraction", [0.08], [4])
    mask, num_low = mask_func((1, 1, size, size, 2), seed=0)  # -> (1, 1, 1, 320, 1)
    mask = mask.to(device).bool()
    masked = kspace * mask

    def simulate_cold():
        _birdcage_cached.cache_clear()
        return simulate_multicoil(image, config, seed=1)

    def varnet_forward():
        with torch.no_grad():
            out = model(masked, mask, num_low)
        sync(device)
        return out

    timing = time_repeats(
        {"simulate (maps cached)": lambda: simulate_multicoil(image, config, seed=1),
         "simulate (maps computed)": simulate_cold,
         "VarNet forward": varnet_forward},
        device, repeats=repeats, warmup=1,
    )
    times = {name: t["median_s"] for name, t in timing.items()}
    base = times["VarNet forward"]
    rows = [[name, t * 1e3, t / base, "< 0.1" if name.startswith("simulate") else ""] for name, t in times.items()]
    payload = {"simulation": {"coils": 16, "shape": [size, size], "cascades": cascades, "varnet": model.source, "device": str(device),
                              "times_s": times, "ratios_vs_varnet": {k: v / base for k, v in times.items()}}}
    return rows, payload


def run(quick: bool, device: torch.device) -> dict:
    """Report section: reading a slice vs a bare h5py read; simulation vs a VarNet forward.

    Quick: 4 read repeats, and the simulation at 128 x 128 against a 2-cascade VarNet.
    """
    repeats, sim_repeats = (4, 1) if quick else (15, 3)
    size, cascades = (128, 2) if quick else (320, 12)
    read_rows, read_payload = bench_reading(repeats)
    sim_rows, sim_payload = bench_simulation(device, sim_repeats, size=size, cascades=cascades)
    return {
        "title": "Data loading vs a bare h5py read; simulation",
        "tables": [
            {"caption": "Reading one 15-coil 640 x 368 slice (ratio = time / bare h5py read of k-space + target, "
                        f"medians of {repeats} interleaved repeats)",
             "headers": ["path", "ms", "bare read ms", "ratio", "target"], "rows": read_rows},
            {"caption": f"Simulating one 16-coil {size} x {size} slice vs a VarNet-{cascades} forward on {device} "
                        "(ratio = time / VarNet forward)",
             "headers": ["step", "ms", "ratio", "target"], "rows": sim_rows},
        ],
        "figures": [],
        "notes": [],
        "results": {**read_payload, **sim_payload},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--sim-repeats", type=int, default=3)
    args = parser.parse_args(argv)
    device = torch.device(args.device)

    read_rows, read_payload = bench_reading(args.repeats)
    sim_rows, sim_payload = bench_simulation(device, args.sim_repeats)
    table = (
        "Reading one 15-coil 640 x 368 slice (ratio = time / bare h5py read of k-space + target)\n\n"
        + markdown_table(["path", "ms", "bare read ms", "ratio", "target"], read_rows)
        + f"\n\nSimulating one 16-coil 320 x 320 slice vs a {sim_payload['simulation']['varnet']} forward "
        f"on {device} (ratio = time / VarNet forward)\n\n"
        + markdown_table(["step", "ms", "ratio", "target"], sim_rows)
    )
    folder = save_results("data", device, {**read_payload, **sim_payload}, table, "recon.data benchmark")
    print(table)
    print(f"\nwritten to {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
