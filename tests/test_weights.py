"""Weight files: conversion of official checkpoints, the registry, Hub downloads, safety."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import TINY, need_shared, run_cli
from hub_server import HubServer

from deblur_cli.errors import WeightsError
from deblur_cli.model import ModelConfig, build_model
from deblur_cli.weights import (
    convert_official,
    parse_hf_url,
    read_weights,
    resolve_weights,
    save_weights,
)


def test_convert_then_deblur_matches_official_output(tmp_path: Path):
    """The acceptance check of the foundation issue, through the installed command."""
    folder = need_shared("fixtures", "official-tiny")
    converted = tmp_path / "t.safetensors"
    result = run_cli("weights", "convert", folder / "model-1000.pt", "-o", converted)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out.png"
    result = run_cli(
        "image",
        folder / "input.png",
        "-o",
        out,
        "--weights",
        converted,
        "--device",
        "cpu",
        "--precision",
        "fp32",
        "--tile",
        "0",
    )
    assert result.returncode == 0, result.stderr
    expected = np.round(np.clip(np.load(folder / "io.npz")["output_0"], 0, 255))
    ours = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)[..., ::-1].astype(np.float64)
    assert ours.shape == expected.shape
    assert np.abs(ours - expected).max() <= 1
    meta = read_weights(converted).metadata
    assert json.loads(meta["config"]) == {
        "n_scales": 3,
        "n_resblocks": 2,
        "n_feats": 8,
        "kernel_size": 5,
        "residual": False,  # the paper's network has no global skip
    }
    assert "MIT" in meta["license"]


def test_paper_size_official_checkpoint_converts(tmp_path: Path):
    """A 19-block, 64-feature checkpoint in the official layout converts with its config."""
    torch.manual_seed(0)
    net = build_model(ModelConfig())
    src = tmp_path / "model-1000.pt"
    torch.save({"G": {f"module.{k}": v for k, v in net.state_dict().items()}}, src)
    wf = convert_official(src, tmp_path / "paper.safetensors")
    assert wf.config == ModelConfig(3, 19, 64, 5)
    loaded = read_weights(tmp_path / "paper.safetensors")
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.state_dict[key], value)


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_convert_refuses_pickled_code(tmp_path: Path):
    src = tmp_path / "model-evil.pt"
    with open(src, "wb") as f:
        pickle.dump({"G": Exploit()}, f)
    result = run_cli("weights", "convert", src, "-o", tmp_path / "x.safetensors", cwd=tmp_path)
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert "refused" in result.stderr
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "x.safetensors").exists()


def test_refusals_name_the_problem_without_torch_advice(tmp_path: Path):
    """Code in a torch checkpoint is refused by name; torch's 'use weights_only=False' advice
    (i.e. run the code) is never repeated; a bare pickle is not a weight file, whatever its
    extension."""
    evil = tmp_path / "evil.pt"
    torch.save({"G": Exploit()}, evil)
    raw = tmp_path / "raw.safetensors"
    raw.write_bytes(pickle.dumps({"body_models.0.weight": [0.0] * 4}))
    renamed = tmp_path / "raw.pt"
    renamed.write_bytes(raw.read_bytes())
    for verb in ("info", "convert"):
        extra = ["-o", tmp_path / "x.safetensors"] if verb == "convert" else []
        result = run_cli("weights", verb, evil, *extra, cwd=tmp_path)
        assert result.returncode == 4
        assert len(result.stderr.strip().splitlines()) == 1
        assert "refused" in result.stderr and "posix.system" in result.stderr
        assert "weights_only" not in result.stderr
        for path in (raw, renamed):
            result = run_cli("weights", verb, path, *extra)
            assert result.returncode == 4
            assert "not a weight file" in result.stderr, result.stderr
            assert "header too large" not in result.stderr
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "x.safetensors").exists()


@pytest.mark.parametrize("content", ["text", "other-net"])
def test_convert_rejects_non_deepdeblur_files(tmp_path: Path, content: str):
    src = tmp_path / "model.pt"
    if content == "text":
        src.write_text("hello")
    else:
        torch.save({"G": {"fc.weight": torch.zeros(2, 2)}}, src)
    result = run_cli("weights", "convert", src, "-o", tmp_path / "x.safetensors")
    assert result.returncode == 4
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.safetensors").exists()


def test_missing_weights_are_a_loud_error(tmp_path: Path):
    with pytest.raises(WeightsError, match="not found"):
        resolve_weights(tmp_path / "nope.safetensors")
    with pytest.raises(WeightsError, match="unknown weights"):
        resolve_weights("no-such-model")
    image = tmp_path / "in.png"
    cv2.imwrite(str(image), np.zeros((16, 16, 3), np.uint8))
    result = run_cli("image", image, "--weights", tmp_path / "nope.safetensors")
    assert result.returncode == 4 and "not found" in result.stderr
    assert not (tmp_path / "in_deblurred.png").exists()


def test_hf_url_parsing():
    assert parse_hf_url("hf://me/models/sub/w.safetensors@v1") == (
        "me/models",
        "sub/w.safetensors",
        "v1",
    )
    assert parse_hf_url("hf://me/models/w.safetensors") == ("me/models", "w.safetensors", "main")
    with pytest.raises(WeightsError):
        parse_hf_url("hf://me/w.safetensors")


def test_hub_download_verify_tamper_and_offline(tmp_path: Path, tiny_weights: Path):
    good = tiny_weights.read_bytes()
    bad = good[:-8] + b"tampered"
    sha = hashlib.sha256(good).hexdigest()
    registry = tmp_path / "registry.toml"
    registry.write_text(
        f"""
[models.tiny-hub]
config = {{ n_scales = 3, n_resblocks = 1, n_feats = 8, kernel_size = 3 }}
repo_id = "deblur-test/tiny"
filename = "tiny.safetensors"
revision = "main"
sha256 = "{sha}"

[models.tiny-tampered]
config = {{ n_scales = 3, n_resblocks = 1, n_feats = 8, kernel_size = 3 }}
repo_id = "deblur-test/evil"
filename = "tiny.safetensors"
sha256 = "{sha}"
"""
    )
    hf_home = tmp_path / "hf"
    image = tmp_path / "in.png"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (40, 56, 3), np.uint8))
    with HubServer() as hub:
        hub.add("deblur-test/tiny", "tiny.safetensors", good)
        hub.add("deblur-test/evil", "tiny.safetensors", bad)
        env = {
            "HF_ENDPOINT": hub.url,
            "HF_HOME": str(hf_home),
            "DEBLUR_REGISTRY": str(registry),
            "HF_HUB_DISABLE_TELEMETRY": "1",
        }
        result = run_cli("weights", "download", "tiny-hub", env=env)
        assert result.returncode == 0, result.stderr
        assert any(r.startswith("GET /deblur-test/tiny/resolve/main/") for r in hub.requests)
        cached = list((hf_home / "hub").rglob("tiny.safetensors"))
        assert cached and hashlib.sha256(cached[0].read_bytes()).hexdigest() == sha

        result = run_cli("weights", "download", "tiny-tampered", env=env)
        assert result.returncode == 4
        assert "sha256 mismatch" in result.stderr and len(result.stderr.strip().splitlines()) == 1
        blobs = [
            p
            for p in (hf_home / "hub").rglob("*")
            if "evil" in str(p)
            and ("blobs" in p.parts or "snapshots" in p.parts)
            and (p.is_file() or p.is_symlink())
        ]
        assert blobs == [], "a tampered download must not stay in the cache"

        # hf:// addresses go through the same verified path when the registry knows them.
        result = run_cli("weights", "info", "hf://deblur-test/tiny/tiny.safetensors", env=env)
        assert result.returncode == 0, result.stderr

    # The server is gone: offline use from the cache still works, and still verifies.
    offline = {**env, "HF_HUB_OFFLINE": "1"}
    out = tmp_path / "out.png"
    result = run_cli(
        "image", image, "-o", out, "--weights", "tiny-hub", "--device", "cpu", env=offline
    )
    assert result.returncode == 0, result.stderr
    assert cv2.imread(str(out)).shape == (40, 56, 3)
    result = run_cli("weights", "download", "tiny-tampered", env=offline)
    assert result.returncode == 4 and "cache" in result.stderr


def test_safetensors_metadata_round_trip(tmp_path: Path):
    net = build_model(TINY)
    path = save_weights(
        tmp_path / "m.safetensors",
        net.state_dict(),
        TINY,
        training_data="unit test",
        metrics={"psnr": 30.1},
    )
    wf = read_weights(path)
    assert wf.config == TINY
    assert wf.metadata["training_data"] == "unit test"
    assert json.loads(wf.metadata["metrics"]) == {"psnr": 30.1}
    assert wf.metadata["architecture"] == "deepdeblur-msresnet"


def test_corrupt_safetensors_is_refused(tmp_path: Path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(WeightsError, match="safetensors"):
        read_weights(path)


def _closed_port() -> int:
    """A local port nothing listens on: connections to it are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_hub_without_network_fails_in_one_line_and_uses_the_cache(
    tmp_path: Path, tiny_weights: Path
):
    """No network: a cached hf:// file still loads; an uncached one fails at once with one
    line (huggingface_hub alone retries for ~25 s and logs 11 lines); HF_HUB_OFFLINE=1
    sends no request at all. Real HTTP against tests/hub_server.py, nothing mocked."""
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_TELEMETRY": "1"}
    cached = "hf://deblur-test/tiny/tiny.safetensors"
    with HubServer() as hub:
        hub.add("deblur-test/tiny", "tiny.safetensors", tiny_weights.read_bytes())
        online = {**env, "HF_ENDPOINT": hub.url}
        assert run_cli("weights", "info", cached, env=online).returncode == 0

        # HF_HUB_OFFLINE: the cache answers, the server is never asked.
        before = len(hub.requests)
        offline = {**online, "HF_HUB_OFFLINE": "1"}
        result = run_cli("weights", "info", cached, env=offline)
        assert result.returncode == 0, result.stderr
        result = run_cli("weights", "info", "hf://deblur-test/tiny/other.safetensors", env=offline)
        assert result.returncode == 4 and "HF_HUB_OFFLINE" in result.stderr
        assert len(hub.requests) == before

    unreachable = {**env, "HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}"}
    result = run_cli("weights", "info", cached, env=unreachable)
    assert result.returncode == 0, result.stderr
    assert "tiny.safetensors" in result.stdout

    missing = "hf://deblur-test/tiny/missing.safetensors"
    result = run_cli("weights", "info", missing, env=unreachable)
    assert result.returncode == 4
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]  # one line
    assert "cannot be reached" in result.stderr and "Retry" not in result.stderr


def _on_terminal(*args: str, columns: int) -> str:
    """stdout of the CLI on a pseudo-terminal ``columns`` wide (what a user sees)."""
    import pty
    import subprocess
    import sys

    main, child = pty.openpty()
    env = {**os.environ, "COLUMNS": str(columns)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "deblur_cli", *args], stdout=child, stderr=subprocess.PIPE, env=env
    )
    os.close(child)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_weights_info_keeps_path_and_sha256_whole_at_80_columns(tmp_path: Path):
    """Piped or on an 80-column terminal, the path and sha256 are copyable whole."""
    deep = tmp_path / ("a-rather-long-folder-name-" * 3) / "nested"
    deep.mkdir(parents=True)
    path = save_weights(
        deep / "tiny.safetensors",
        build_model(TINY).state_dict(),
        TINY,
        description="A description long enough that it has to be wrapped on a narrow terminal "
        "screen, and that is fine for prose.",
    )
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    piped = run_cli("weights", "info", path, env={"COLUMNS": "80"})
    assert piped.returncode == 0, piped.stderr
    for out in (piped.stdout, _on_terminal("weights", "info", str(path), columns=80)):
        fields = dict(line.split(None, 1) for line in out.splitlines() if line[:1].strip())
        assert fields["file"] == str(path) and fields["sha256"] == sha
        assert "…" not in out
    data = json.loads(run_cli("weights", "info", path, "--json").stdout)
    assert data["sha256"] == sha and data["file"] == str(path)

    listing = run_cli("weights", "list", env={"COLUMNS": "80"})
    assert listing.returncode == 0 and "…" not in listing.stdout
    assert "light-gopro*  bundled" in listing.stdout  # one line per model
    provenance = run_cli("weights", "info", "light-gopro", env={"COLUMNS": "80"}).stdout
    assert "bundled (light-gopro.safetensors)" in provenance  # the details stay in info
