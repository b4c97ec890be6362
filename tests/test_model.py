"""The network and pyramid reproduce the official DeepDeblur-PyTorch code."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import need_shared

from deblur_cli.model import CONFIGS, ModelConfig, build_model, infer_config
from deblur_cli.pyramid import gaussian_pyramid, pad_to_multiple


def _fixture():
    folder = need_shared("fixtures", "official-tiny")
    return folder, np.load(folder / "io.npz")


def test_pyramid_matches_official_fixture():
    _, io = _fixture()
    x = torch.from_numpy(io["blur"]).permute(2, 0, 1)[None].float()
    levels = gaussian_pyramid(x, 3)
    for i, level in enumerate(levels):
        ours = level[0].permute(1, 2, 0).numpy()
        assert ours.shape == io[f"pyramid_{i}"].shape
        assert np.abs(ours - io[f"pyramid_{i}"]).max() < 1e-3


@pytest.mark.parametrize("shape", [(37, 51), (64, 96), (5, 9), (2, 3)])
def test_pyramid_matches_scikit_image_on_odd_sizes(shape):
    transform = pytest.importorskip("skimage.transform")
    rng = np.random.default_rng(1)
    image = rng.uniform(0, 255, (*shape, 3)).astype(np.float32)
    expected = list(
        transform.pyramid_gaussian(image, max_layer=2, channel_axis=-1, preserve_range=True)
    )
    ours = gaussian_pyramid(torch.from_numpy(image).permute(2, 0, 1)[None], 3)
    for level, ref in zip(ours, expected, strict=True):
        got = level[0].permute(1, 2, 0).numpy()
        assert got.shape == ref.shape
        assert np.abs(got - ref).max() < 1e-3


def test_official_checkpoint_outputs_all_scales():
    folder, io = _fixture()
    checkpoint = torch.load(folder / "model-1000.pt", weights_only=True)
    config = infer_config(checkpoint["G"])
    assert config == ModelConfig(3, 2, 8, 5)
    net = build_model(config).eval()
    net.load_state_dict(checkpoint["G"])
    x = torch.from_numpy(io["blur"]).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        outputs = net.forward_all(x)
    for i, out in enumerate(outputs):
        assert np.abs(out[0].permute(1, 2, 0).numpy() - io[f"output_{i}"]).max() < 1e-3


def test_paper_config_matches_published_parameter_count():
    net = build_model(CONFIGS["paper"])
    state = net.state_dict()
    assert len(state) == 244
    assert sum(t.numel() for t in state.values()) == 11_721_321
    assert "conv_end_models.0.uppath.0.weight" not in state
    assert infer_config(state) == CONFIGS["paper"]


@pytest.mark.parametrize("size", [(33, 47), (64, 64), (17, 90)])
def test_any_size_and_config_round_trips_shape(size):
    config = ModelConfig(n_scales=2, n_resblocks=1, n_feats=4, kernel_size=3)
    net = build_model(config).eval()
    with torch.no_grad():
        out = net(torch.rand(1, 3, *size) * 255)
    assert out.shape == (1, 3, *size)
    padded, original = pad_to_multiple(torch.zeros(1, 3, *size), 4)
    assert padded.shape[-2] % 4 == 0 and padded.shape[-1] % 4 == 0 and original == size


def test_infer_config_rejects_other_networks():
    with pytest.raises(ValueError):
        infer_config({"conv.weight": torch.zeros(3, 3, 3, 3)})
    state = build_model(ModelConfig(3, 1, 4, 3)).state_dict()
    state.pop("body_models.1.body.1.body.0.bias")
    with pytest.raises(ValueError):
        infer_config(state)


def test_residual_network_starts_as_identity_and_keeps_its_flag(tmp_path):
    """A residual config adds each scale's input: fresh, it returns the pyramid unchanged."""
    from deblur_cli.weights import read_weights, save_weights

    config = ModelConfig(3, 1, 4, 3, residual=True)
    net = build_model(config).eval()
    image = torch.rand(1, 3, 40, 56) * 255
    with torch.no_grad():
        outputs = net.forward_all(image)
    levels = gaussian_pyramid(image, 3)
    assert torch.allclose(outputs[0], image, atol=1e-4)
    for out, level in zip(outputs[1:], levels[1:], strict=True):
        assert torch.allclose(out, level, atol=1e-4)
    # The same tensors without the flag are a different function.
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.01)
        residual_out = net(image)
        plain = build_model(ModelConfig(3, 1, 4, 3)).eval()
        plain.load_state_dict(net.state_dict())
        assert (plain(image) - residual_out).abs().mean() > 10
    # The flag cannot be seen in the tensors, so it travels in the metadata.
    assert infer_config(net.state_dict()) == ModelConfig(3, 1, 4, 3)
    path = save_weights(tmp_path / "res.safetensors", net.state_dict(), config)
    assert read_weights(path).config == config


def test_config_specs_parse_names_and_numbers():
    assert ModelConfig.parse("light") is CONFIGS["light"]
    assert ModelConfig.parse("3,4,32,3,res") == ModelConfig(3, 4, 32, 3, residual=True)
    assert ModelConfig.parse(" 2, 5, 16, 5") == ModelConfig(2, 5, 16, 5)
    for bad, message in (("huge", "use paper, light"), ("3,9,32", "SCALES,BLOCKS"),
                         ("3,9,32,4", "odd kernel"), ("3,0,32,3", "positive")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            ModelConfig.parse(bad)


def test_grown_network_computes_what_the_trained_one_does(tmp_path):
    """scripts/grow_model.py: the bundled default made wider and deeper gives the same picture
    (so a capacity comparison starts from the same function), and its new parts can learn:
    new channels carry features of the trained layers' size, their outgoing weights are 0."""
    import subprocess
    import sys
    from pathlib import Path

    from deblur_cli.engine import load_model
    from deblur_cli.io.images import read_image

    script = Path(__file__).resolve().parents[1] / "scripts" / "grow_model.py"
    out = tmp_path / "grown.safetensors"
    proc = subprocess.run(
        [sys.executable, str(script), "light-gopro", str(out), "--feats", "40", "--blocks", "9",
         "--kernel", "5"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    small, grown = load_model("light-gopro", "cpu", "fp32"), load_model(out, "cpu", "fp32")
    assert (grown.config.n_feats, grown.config.n_resblocks, grown.config.kernel_size) == (40, 9, 5)
    assert grown.config.residual
    blurry, _ = read_image(Path(__file__).resolve().parents[1] / "deblur_cli/examples/blurry.png")
    crop = blurry[:96, :128]
    diff = np.abs(small(crop).astype(int) - grown(crop).astype(int))
    assert diff.max() <= 1 and diff.mean() < 0.01  # float sums in another order, at most
    state = grown.net.state_dict()
    block = state["body_models.0.body.2.body.0.weight"]
    assert block[32:, :32].std() > 0.5 * block[:32, :32].std()  # new channels see the old
    assert not block[:32, 32:].any()  # ...but the old never see the new
    assert not state["body_models.0.body.10.weight"][:, 32:].any()  # nor does the RGB tail
    assert not state["body_models.0.body.9.body.2.weight"].any()  # an added block adds 0
    head = state["body_models.0.body.0.weight"]  # 3x3 taps in the middle of 5x5 zeros
    assert head[..., 1:4, 1:4].any() and not head[..., 0, :].any() and not head[..., :, 4].any()
