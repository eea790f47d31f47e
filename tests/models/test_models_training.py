"""Training behaviour: a tiny model overfits a tiny simulated problem; torch.compile parity (slow)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recon.models import CascadeNet, NormUnet, VarNet, VarNetBlock
from recon.models.cascade import CascadeBlock
from recon.ops import fft2c
from tests.conftest import make_phantom


def _simulate(coils: int, size: int = 32, seed: int = 0):
    """The shared phantom (tests/conftest.py), noiseless, under a 4x column mask with a 6-column centre."""
    image, maps, _ = make_phantom(size, size, coils, seed=seed, noise=0.0)
    kspace = fft2c(torch.view_as_real(torch.from_numpy(maps * image)[None]).float())  # (1, C, H, W, 2)
    mask = torch.zeros(1, 1, 1, size, 1, dtype=torch.bool)
    mask[..., ::4, :] = True
    mask[..., size // 2 - 3 : size // 2 + 3, :] = True
    target = torch.from_numpy(np.abs(image)).float()[None]  # (1, H, W); the maps have unit RSS
    return kspace * mask, mask, target


def _psnr(target: torch.Tensor, pred: torch.Tensor) -> float:
    t, p = target.detach().double().numpy(), pred.detach().double().numpy()
    return float(20 * np.log10(t.max()) - 10 * np.log10(np.mean((t - p) ** 2)))


def _zero_filled(kspace: torch.Tensor) -> torch.Tensor:
    image = torch.fft.fftshift(
        torch.fft.ifft2(torch.fft.ifftshift(torch.view_as_complex(kspace), dim=(-2, -1)), norm="ortho"),
        dim=(-2, -1),
    )
    return image.abs().square().sum(1).sqrt()


def _fit(model: torch.nn.Module, kspace, mask, target, steps: int, lr: float) -> float:
    optim = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        optim.zero_grad()
        loss = (model(kspace, mask) - target).abs().mean()
        loss.backward()
        optim.step()
    model.eval()
    with torch.no_grad():
        return _psnr(target, model(kspace, mask))


def test_cascadenet_overfits_single_coil():
    kspace, mask, target = _simulate(coils=1, seed=1)
    baseline = _psnr(target, _zero_filled(kspace))
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = CascadeNet(num_cascades=2, num_convs=3, num_filters=16, sens_chans=0)
    psnr = _fit(model, kspace, mask, target, steps=40, lr=2e-3)
    assert psnr > baseline + 1.0, (psnr, baseline)


def test_varnet_overfits_multicoil():
    kspace, mask, target = _simulate(coils=4, seed=2)
    baseline = _psnr(target, _zero_filled(kspace))
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = VarNet(num_cascades=2, sens_chans=4, sens_pools=2, chans=8, pools=2, checkpoint_cascades=True)
    psnr = _fit(model, kspace, mask, target, steps=40, lr=3e-3)
    assert psnr > baseline + 1.0, (psnr, baseline)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["varnet", "cascade"])
def test_compiled_cascade_equals_eager_without_graph_breaks(kind):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        block = VarNetBlock(NormUnet(4, 2)) if kind == "varnet" else CascadeBlock(3, 8, dc_lambda=0.5)
    gen = torch.Generator().manual_seed(3)
    k = torch.randn(1, 3 if kind == "varnet" else 1, 32, 32, 2, generator=gen)
    mask = torch.zeros(1, 1, 1, 32, 1, dtype=torch.bool)
    mask[..., ::2, :] = True
    k0 = k * mask
    maps = torch.randn(1, 3, 32, 32, 2, generator=gen) if kind == "varnet" else None
    args = (k, k0, mask, maps) if kind == "varnet" else (k, k0, mask, maps, torch.ones(1, 1, 1, 1, 1))
    compiled = torch.compile(block, fullgraph=True)  # fullgraph: any graph break is an error
    with torch.no_grad():
        torch.testing.assert_close(compiled(*args), block(*args), rtol=1e-4, atol=1e-5)
    out_c = compiled(*args)
    out_e = block(*args)
    torch.testing.assert_close(out_c, out_e, rtol=1e-4, atol=1e-5)
    g_c = torch.autograd.grad(out_c.square().sum(), list(block.parameters()), allow_unused=True)
    g_e = torch.autograd.grad(out_e.square().sum(), list(block.parameters()), allow_unused=True)
    for a, b in zip(g_c, g_e):
        if b is not None:  # float32 gradients: compare per tensor, relative to its norm
            assert (a - b).norm() <= 1e-3 * b.norm() + 1e-6, ((a - b).norm(), b.norm())


def test_training_after_inference_mode_same_size():
    # regression: recon.ops.fft caches sign tensors, and one made under inference_mode cannot be
    # saved for backward; a model validated under inference_mode must still train afterwards.
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = VarNet(num_cascades=1, sens_chans=2, sens_pools=1, chans=2, pools=1)
    gen = torch.Generator().manual_seed(0)
    kspace = torch.randn(1, 2, 26, 22, 2, generator=gen)  # a size no other test uses
    mask = torch.ones(1, 1, 1, 22, 1, dtype=torch.bool)
    with torch.inference_mode():
        model(kspace, mask)
    model(kspace, mask).sum().backward()
