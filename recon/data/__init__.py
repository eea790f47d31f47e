"""Data layer: fastMRI HDF5 in and out, sample transforms, simulation, embedded sample data.

Public names: :class:`SliceDataset`, :class:`VolumeSampler`, :func:`save_reconstructions`,
:func:`save_nifti` / :func:`load_nifti`, the transforms (:class:`UnetDataTransform`,
:class:`VarNetDataTransform`, :func:`collate_samples`), the simulation
(:func:`simulate_multicoil`, :func:`simulate_nifti`, :func:`simulate_folder`) and the
embedded data (:func:`sample_file`, :func:`sample_files`, :func:`sample_dir`); image-domain
data: DICOM series (:func:`read_dicom_series`, :func:`dicom_to_nifti`) and NIfTI volumes as
datasets (:class:`NiftiSliceDataset`, :class:`PairedVolumeDataset`, :func:`volume_to_slices`);
tissue phantoms (:mod:`recon.data.phantom`: :class:`PhantomSubject`) and the physics training
corpus (:mod:`recon.data.corpus`: :class:`CorpusConfig`, :func:`build_corpus`,
:func:`check_training_folder`).
"""

from recon.data.corpus import CorpusConfig, build_corpus, check_training_folder
from recon.data.dicom import DicomSeriesError, DicomSeriesInfo, dicom_to_nifti, list_dicom_series, read_dicom_series
from recon.data.header import HeaderError, HeaderInfo, make_ismrmrd_header, parse_ismrmrd_header
from recon.data.io import load_nifti, save_nifti, save_reconstructions, write_fastmri_file
from recon.data.phantom import Subject as PhantomSubject
from recon.data.mri_data import DataFileError, FastMRIRawDataSample, SliceDataset, VolumeSampler, read_file_metadata
from recon.data.sample import SPLITS, cache_dir, data_dir, sample_dir, sample_file, sample_files
from recon.data.simulate import (
    SimulatedVolume,
    SimulationConfig,
    birdcage_maps,
    simulate_folder,
    simulate_multicoil,
    simulate_nifti,
    write_simulated,
)
from recon.data.transforms import (
    UnetDataTransform,
    UnetSample,
    VarNetDataTransform,
    VarNetSample,
    collate_samples,
    to_tensor,
)
from recon.data.volumes import NiftiSliceDataset, PairedVolumeDataset, volume_to_slices

__all__ = [
    "SliceDataset", "VolumeSampler", "FastMRIRawDataSample", "DataFileError", "read_file_metadata",
    "HeaderError", "HeaderInfo", "make_ismrmrd_header", "parse_ismrmrd_header",
    "save_reconstructions", "write_fastmri_file", "save_nifti", "load_nifti",
    "UnetDataTransform", "VarNetDataTransform", "UnetSample", "VarNetSample",
    "collate_samples", "to_tensor",
    "SimulationConfig", "SimulatedVolume", "birdcage_maps", "simulate_multicoil",
    "write_simulated", "simulate_nifti", "simulate_folder",
    "PhantomSubject", "CorpusConfig", "build_corpus", "check_training_folder",
    "SPLITS", "data_dir", "cache_dir", "sample_file", "sample_files", "sample_dir",
    "read_dicom_series", "dicom_to_nifti", "list_dicom_series", "DicomSeriesInfo", "DicomSeriesError",
    "NiftiSliceDataset", "PairedVolumeDataset", "volume_to_slices",
]
