"""Image -> image heads: contrast synthesis, unconditional slice synthesis, denoising.

Networks only (tensors in, tensors out; no file I/O): :mod:`recon.heads.synthesis`
(:class:`~recon.heads.synthesis.ResNet3d`, :class:`~recon.heads.synthesis.UnetSynthesizer`,
:class:`~recon.heads.synthesis.CycleGAN`; its tissue-table generator
:class:`~recon.heads.cyclegan.TissueMapSynthesizer` in :mod:`recon.heads.cyclegan`),
:mod:`recon.heads.gan` (DCGAN and the memorisation
check), :mod:`recon.heads.denoise` (skip-connected autoencoder, Rician noise, sigma estimator),
:mod:`recon.heads.registration` (VoxelMorph network, spatial transformer, NCC; :func:`recon.register`),
:mod:`recon.heads.superres` (multi-scale fusion CNN, 3-D SRGAN, low-resolution simulation; :func:`recon.super_resolve`).
The one-call functions :func:`recon.synthesize`, :func:`recon.denoise` and :func:`recon.generate`
load the bundled weights (``data/weights/heads/``) and run them.
"""

from recon.heads.cyclegan import TissueMapSynthesizer
from recon.heads.denoise import DenoisingAutoencoder, add_rician_noise, denoise_image, estimate_sigma, rician_floor_correction
from recon.heads.gan import DCGANDiscriminator, DCGANGenerator, intensity_histogram_distance, max_ncc, radial_power_spectrum, spectrum_distance
from recon.heads.registration import DeformableTransform, RegistrationNet, SpatialTransformer, integrate_velocity, local_ncc, warp
from recon.heads.superres import MultiScaleFusionSR, SRGAN3d, SRDiscriminator3d, SRGenerator3d, high_frequency_energy, image_degrade, kspace_truncate, kspace_zero_pad
from recon.heads.synthesis import (ENSEMBLE_UNET_WEIGHT, SLICE_ENSEMBLE_WEIGHTS, CycleGAN, ImagePool, LocalSynthesizer,
                                   PatchDiscriminator, ResNet3d, SliceEnsemble, UnetSynthesizer, crop_axial, ensemble_volume,
                                   lsgan_loss, resnet3d_volume, sliding_window_3d, translate_slices, unet_volume)

__all__ = [
    "ResNet3d", "UnetSynthesizer", "LocalSynthesizer", "TissueMapSynthesizer", "CycleGAN", "PatchDiscriminator", "ImagePool", "lsgan_loss", "crop_axial",
    "sliding_window_3d", "translate_slices", "unet_volume", "resnet3d_volume", "ensemble_volume", "ENSEMBLE_UNET_WEIGHT",
    "SliceEnsemble", "SLICE_ENSEMBLE_WEIGHTS",
    "DCGANGenerator", "DCGANDiscriminator", "max_ncc", "intensity_histogram_distance", "radial_power_spectrum",
    "spectrum_distance",
    "DenoisingAutoencoder", "add_rician_noise", "estimate_sigma", "rician_floor_correction", "denoise_image",
    "MultiScaleFusionSR", "SRGenerator3d", "SRDiscriminator3d", "SRGAN3d", "kspace_truncate", "kspace_zero_pad",
    "image_degrade", "high_frequency_energy",
    "RegistrationNet", "SpatialTransformer", "warp", "integrate_velocity", "local_ncc", "DeformableTransform",
]
