"""The CycleGAN's tissue-map generator (recon.heads.cyclegan) and its training option ``--arch tissue``."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from recon.heads.cyclegan import TissueMapSynthesizer, hat_basis
from recon.heads.synthesis import CycleGAN


def _minkowski_offsets(dilations):
    """Closed form of a stack of 3x3 convolutions' support: the sums of one of {-d, 0, d} per layer."""
    return {sum(c) for c in itertools.product(*[(-d, 0, d) for d in dilations])} if dilations else {0}


@pytest.mark.parametrize("dilations", [(1, 2, 4, 1), (1, 3), (2, 5), (4,), ()])
def test_receptive_field_is_the_closed_form_support(dilations):
    torch.manual_seed(0)
    net = TissueMapSynthesizer(chans=4, knots=9, max_intensity=2.0, dilations=dilations)
    for p in net.parameters():  # generic weights (the last context layer starts at zero)
        torch.nn.init.normal_(p, std=0.5)
    n, c = 41, 20
    x = torch.rand(1, 1, n, n, dtype=torch.float64) * 1.6 + 0.1
    net = net.double()
    with torch.no_grad():
        y0 = net(x)
        x1 = x.clone()
        x1[0, 0, c, c] += 0.05
        changed = (net(x1) - y0)[0, 0].abs() > 1e-12
    offsets = _minkowski_offsets(dilations)
    expected = np.zeros((n, n), bool)
    for i, j in itertools.product(offsets, offsets):
        expected[c + i, c + j] = True
    np.testing.assert_array_equal(changed.numpy(), expected)
    assert net.receptive_field == 1 + 2 * sum(dilations) == 2 * max(offsets) + 1


def test_shape_any_size_and_gradients():
    net = TissueMapSynthesizer(chans=4, knots=7)
    for shape in [(2, 1, 30, 34), (1, 1, 7, 5)]:
        x = torch.rand(*shape, requires_grad=True)
        y = net(x)
        assert y.shape == x.shape
    y.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_table_is_linear_interpolation():
    # no context: the output is the piecewise-linear interpolation of the table (numpy's np.interp),
    # inputs outside [0, max_intensity] clamped
    net = TissueMapSynthesizer(knots=5, max_intensity=2.0, dilations=(), init="identity")
    values = np.array([0.0, 3.0, -1.0, 2.5, 0.7])
    with torch.no_grad():
        net.values.copy_(torch.tensor(values / net.gain))
    x = np.linspace(-0.5, 2.6, 97).reshape(1, 1, 97, 1)
    with torch.no_grad():
        y = net(torch.tensor(x, dtype=torch.float32))[0, 0, :, 0].double().numpy()
    np.testing.assert_allclose(y, np.interp(x.ravel(), np.linspace(0, 2, 5), values), atol=1e-5)
    t, v = net.table()
    np.testing.assert_allclose(v.numpy(), values, atol=1e-6)


def test_inits():
    x = torch.rand(1, 1, 12, 13) * 2.5
    ident = TissueMapSynthesizer(chans=4)
    const = TissueMapSynthesizer(chans=4, init="constant")
    with torch.no_grad():  # the context starts at zero: identity is the copy, constant is flat 1
        torch.testing.assert_close(ident(x), x)
        torch.testing.assert_close(const(x), torch.ones_like(x))
    basis = hat_basis(x, 13, 3.0)
    torch.testing.assert_close(basis.sum(1), torch.ones(1, 12, 13))
    assert int((basis > 0).sum(1).max()) <= 2


def test_option_errors():
    with pytest.raises(ValueError, match="knots"):
        TissueMapSynthesizer(knots=1)
    with pytest.raises(ValueError, match="max_intensity"):
        TissueMapSynthesizer(max_intensity=0)
    with pytest.raises(TypeError, match="gain"):
        TissueMapSynthesizer(gain="10")
    with pytest.raises(ValueError, match="gain"):
        TissueMapSynthesizer(gain=float("nan"))
    net = TissueMapSynthesizer(dilations=(), max_intensity=np.float32(2.5))  # numpy scalars are numbers
    assert net.max_intensity == 2.5 and isinstance(net.max_intensity, float)
    with pytest.raises(ValueError, match="dilations"):
        TissueMapSynthesizer(dilations=(1, 0))
    with pytest.raises(TypeError, match="dilations"):
        TissueMapSynthesizer(dilations=3)
    with pytest.raises(ValueError, match="init must be"):
        TissueMapSynthesizer(init="random")
    net = TissueMapSynthesizer(chans=4)
    with pytest.raises(ValueError, match="image must be a 4-D tensor"):
        net(torch.zeros(4, 4))
    with pytest.raises(ValueError, match="1 channel"):
        net(torch.zeros(1, 2, 4, 4))
    with pytest.raises(TypeError, match="generator_options"):
        CycleGAN(chans=4, generator_arch="tissue", generator_options=[1])


def test_cyclegan_tissue_arch_and_losses():
    torch.manual_seed(0)
    model = CycleGAN(chans=4, disc_chans=4, disc_layers=2, generator_arch="tissue", lambda_identity=0.0, pool_size=0,
                     generator_options={"knots": 9, "dilations": (1, 2), "init": "constant"})
    assert isinstance(model.g_ab, TissueMapSynthesizer) and model.g_ab.receptive_field == 7
    a, b = torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32)
    loss, parts, fake_a, fake_b = model.generator_loss(a, b)
    loss.backward()
    assert model.g_ab.values.grad is not None and fake_b.shape == a.shape
    # both tables flat at the start: the cycle loss has no gradient on the first generator
    # (the second one's table has slope 0), so the adversarial terms choose the direction
    model.zero_grad()
    torch.nn.functional.l1_loss(model.g_ba(model.g_ab(a)), a).backward()
    assert float(model.g_ab.values.grad.abs().max()) == 0.0


def test_task_arch_tissue_builds_and_rejects_bad_options(tmp_path):
    from recon.train.tasks_heads import HeadConfig, build_head, config_from_argv

    config = HeadConfig(task="cyclegan", arch="tissue", source="t1w", target="t2w", chans=4, output_dir=str(tmp_path),
                        options={"knots": 17, "dilations": [1, 3], "tissue_init": "constant"})
    model = build_head(config)
    assert model.g_ba.knots == 17 and model.g_ba.dilations == (1, 3) and model.g_ba.init == "constant"
    with pytest.raises(ValueError, match="arch must be one of"):
        HeadConfig(task="cyclegan", arch="tissues", source="t1w", target="t2w")
    with pytest.raises(ValueError, match="knots"):  # refused by the config, before any data is loaded
        HeadConfig(task="cyclegan", arch="tissue", source="t1w", target="t2w", options={"knots": 0})
    with pytest.raises(ValueError, match="init must be"):
        HeadConfig(task="cyclegan", arch="tissue", source="t1w", target="t2w", options={"tissue_init": "flat"})
    cfg = config_from_argv(["--task", "cyclegan", "--arch", "tissue", "--source", "t1", "--target", "t2",
                            "--knots", "25", "--dilations", "1", "2", "--tissue-init", "constant"])
    assert cfg.arch == "tissue" and cfg.options["knots"] == 25 and cfg.options["dilations"] == [1, 2]
    assert build_head(cfg).g_ab.receptive_field == 7



def test_bundled_card_command_rebuilds_the_bundled_generators():
    import json
    import shlex
    from pathlib import Path

    from recon.train.tasks_heads import _shipped_module, build_head, config_from_argv, heads_dir, load_head

    card_path = Path(heads_dir()) / "cyclegan-t1w-t2w.json"
    if not card_path.is_file():
        pytest.skip("no bundled CycleGAN")
    card = json.loads(card_path.read_text())
    model, config, _ = load_head("cyclegan-t1w-t2w")
    argv = shlex.split(card["command"])[2:]  # after "recon train"
    rebuilt = config_from_argv(argv)
    assert rebuilt.arch == config.arch
    assert {k: rebuilt.options.get(k) for k in config.options} == config.options
    module = _shipped_module(rebuilt, build_head(rebuilt))
    module.load_state_dict(model.state_dict())  # same architecture, same parameter shapes
    if config.arch == "tissue":
        assert model["g_ab"].receptive_field == 1 + 2 * sum(config.options["dilations"])
