"""Learned reconstruction models, fastMRI checkpoint-compatible.

* :class:`Unet`, :class:`NormUnet` -- U-Nets with fastMRI's architecture and parameter names;
* :class:`VarNet`, :class:`VarNetBlock`, :class:`SensitivityModel` -- the E2E VarNet;
* :class:`CascadeNet` -- Schlemper's deep cascade of CNNs (DC-CNN).

Models take tensors (k-space, masks, maps), never files or datasets.
"""

from recon.models.cascade import CascadeNet, CascadeBlock
from recon.models.unet import NormUnet, Unet
from recon.models.varnet import SensitivityModel, VarNet, VarNetBlock

__all__ = ["Unet", "NormUnet", "SensitivityModel", "VarNet", "VarNetBlock", "CascadeNet", "CascadeBlock"]
