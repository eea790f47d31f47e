"""Write small fastMRI-format files with bare h5py, the way the published files look.

Independent of recon's writer on purpose: these are "files written by other tools" - the
header is a hand-written ISMRMRD document with extra fields, as in the fastMRI release.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

HEADER_TEMPLATE = """<?xml version="1.0" encoding="utf-8"?>
<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD" xmlns:xs="http://www.w3.org/2001/XMLSchema"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://www.ismrm.org/ISMRMRD ismrmrd.xsd">
  <studyInformation><studyTime>10:00:00</studyTime></studyInformation>
  <measurementInformation><measurementID>1_2_3</measurementID><patientPosition>HFS</patientPosition>
    <protocolName>AX FLAIR</protocolName></measurementInformation>
  <acquisitionSystemInformation><systemVendor>SIEMENS</systemVendor><systemModel>Skyra</systemModel>
    <systemFieldStrength_T>2.89362</systemFieldStrength_T><receiverChannels>{coils}</receiverChannels>
  </acquisitionSystemInformation>
  <experimentalConditions><H1resonanceFrequency_Hz>123251815</H1resonanceFrequency_Hz></experimentalConditions>
  <encoding>
    <encodedSpace><matrixSize><x>{enc_x}</x><y>{enc_y}</y><z>1</z></matrixSize>
      <fieldOfView_mm><x>440</x><y>220</y><z>7.5</z></fieldOfView_mm></encodedSpace>
    <reconSpace><matrixSize><x>{rec_x}</x><y>{rec_y}</y><z>1</z></matrixSize>
      <fieldOfView_mm><x>220</x><y>220</y><z>5</z></fieldOfView_mm></reconSpace>
    <encodingLimits>
      <kspace_encoding_step_0><minimum>0</minimum><maximum>0</maximum><center>0</center></kspace_encoding_step_0>
      <kspace_encoding_step_1><minimum>0</minimum><maximum>{lim_max}</maximum><center>{lim_center}</center></kspace_encoding_step_1>
      <kspace_encoding_step_2><minimum>0</minimum><maximum>0</maximum><center>0</center></kspace_encoding_step_2>
      <slice><minimum>0</minimum><maximum>15</maximum><center>0</center></slice>
    </encodingLimits>
    <trajectory>cartesian</trajectory>
  </encoding>
  <sequenceParameters><TR>9000</TR><TE>81</TE></sequenceParameters>
</ismrmrdHeader>
"""


def header(enc=(32, 24), rec=(16, 16), lim_center=11, lim_max=21, coils=4) -> bytes:
    """A fastMRI-like header; with the defaults padding_left = 24//2 - 11 = 1, right = 23."""
    return HEADER_TEMPLATE.format(
        enc_x=enc[0], enc_y=enc[1], rec_x=rec[0], rec_y=rec[1], lim_center=lim_center, lim_max=lim_max, coils=coils
    ).encode()


def write_file(
    path: Path,
    *,
    slices: int = 3,
    coils: int | None = 4,
    shape: tuple[int, int] = (32, 24),
    rec: tuple[int, int] = (16, 16),
    targets: tuple[str, ...] = ("reconstruction_rss",),
    test_mask: bool = False,
    acquisition: str = "AXFLAIR",
    seed: int = 0,
    header_bytes: bytes | None = None,
) -> Path:
    """Write one file. ``coils=None`` writes single-coil k-space (slices, H, W)."""
    rng = np.random.default_rng(seed)
    kshape = (slices,) + ((coils,) if coils else ()) + tuple(shape)
    kspace = (rng.standard_normal(kshape) + 1j * rng.standard_normal(kshape)).astype(np.complex64)
    with h5py.File(path, "w") as hf:
        hf.create_dataset("kspace", data=kspace)
        hdr = header(enc=shape, rec=rec, coils=coils or 1) if header_bytes is None else header_bytes
        hf.create_dataset("ismrmrd_header", data=np.bytes_(hdr))
        for name in targets:
            hf.create_dataset(name, data=rng.random((slices, *rec)).astype(np.float32))
        hf.attrs["acquisition"] = acquisition
        hf.attrs["max"] = 1.5 + seed
        hf.attrs["norm"] = 10.0 + seed
        hf.attrs["patient_id"] = f"patient{seed:03d}"
        if test_mask:
            mask = np.zeros(shape[1], dtype=bool)
            mask[::4] = True
            mask[shape[1] // 2 - 2 : shape[1] // 2 + 2] = True
            hf.create_dataset("mask", data=mask)
            hf.attrs["acceleration"] = 4
            hf.attrs["num_low_frequency"] = 4
    return path


def write_folder(root: Path, n_files: int = 3, **kwargs) -> Path:
    """``n_files`` files with 2, 3, 4, ... slices, different seeds and acquisitions."""
    root.mkdir(parents=True, exist_ok=True)
    acquisitions = ["AXFLAIR", "AXT1", "AXT2"]
    fixed = kwargs.pop("acquisition", None)
    for i in range(n_files):
        write_file(
            root / f"file_brain_{i:03d}.h5",
            slices=2 + i,
            seed=i,
            acquisition=fixed or acquisitions[i % 3],
            **kwargs,
        )
    return root
