"""Where weights come from: resolve a name, path or hf:// URL to a verified safetensors file.

Resolution order for ``--weights SPEC``: a local file; ``hf://owner/repo/path[@revision]``;
a name in the registry (``weights/registry.toml`` shipped in the package, plus the TOML file
named by ``$DEBLUR_REGISTRY`` if set); with no SPEC, the registry's bundled default.
Nothing here ever falls back to random weights, and nothing here unpickles code: safetensors
files are plain tensors and official ``.pt`` checkpoints go through ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_path
from .catalog import RegistryEntry, load_registry, registry_dir
from .errors import WeightsError
from .model import ARCHITECTURE, ModelConfig, infer_config

FORMAT_VERSION = "deblur-cli/1"


# --------------------------------------------------------------------------- file format


@dataclass
class WeightFile:
    """A loaded weight file: tensors with official key names, the config, and metadata."""

    state_dict: dict[str, torch.Tensor]
    config: ModelConfig
    metadata: dict[str, Any]
    path: Path | None = None


def save_weights(
    path: str | os.PathLike,
    state_dict: dict[str, torch.Tensor],
    config: ModelConfig,
    **metadata: Any,
) -> Path:
    """Write safetensors with our metadata; atomic, so a crash never leaves half a file."""
    from safetensors.torch import save_file

    meta = {
        "format": FORMAT_VERSION,
        "architecture": ARCHITECTURE,
        "config": json.dumps(config.to_dict()),
    }
    for key, value in metadata.items():
        if value is not None:
            meta[key] = value if isinstance(value, str) else json.dumps(value)
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in state_dict.items()}
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def save_derived_weights(
    path: str | os.PathLike,
    state_dict: dict[str, torch.Tensor],
    config: ModelConfig,
    parent: WeightFile,
    parent_name: str,
    how: str,
    derived_from: str,
) -> Path:
    """A weight file made from another one by surgery (trimmed, grown): it keeps the parent's
    source and training data, and says ``how`` (a past participle) and what changed."""
    return save_weights(
        path,
        state_dict,
        config,
        source=f"{how} from {parent.metadata.get('source', parent_name)}",
        derived_from=f"{parent_name}: {derived_from}",
        training_data=parent.metadata.get("training_data", ""),
        distilled_from=parent.metadata.get("distilled_from"),
    )


def read_weights(path: str | os.PathLike) -> WeightFile:
    """Load a safetensors file (ours, or bare official keys) or an official ``.pt`` checkpoint.

    The format is told by the file's first bytes, not its name, so a renamed file gets the
    right reader and anything else is called what it is: not a weight file.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    kind = sniff_format(path)
    if kind == "safetensors":
        state_dict, metadata = _read_safetensors(path)
    elif kind == "torch":
        state_dict, metadata = read_official_checkpoint(path)
    else:
        raise _not_a_weight_file(path, kind)
    try:
        config = infer_config(state_dict)
    except (KeyError, ValueError) as err:
        raise WeightsError(f"{path}: not a DeepDeblur multi-scale network ({err})") from None
    if "config" in metadata:
        stored = ModelConfig.from_dict(json.loads(metadata["config"]))
        if replace(stored, residual=False) != config:
            raise WeightsError(f"{path}: metadata config {stored} does not match the tensors")
        config = stored
    return WeightFile(state_dict, config, metadata, path)


# torch.save's legacy (pre-1.6) format starts with this number, pickled with protocol 2.
_LEGACY_TORCH_MAGIC = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)[2:]


def sniff_format(path: Path) -> str:
    """'safetensors', 'torch' (torch.save zip or legacy), 'pickle' (a bare Python pickle),
    'empty' or 'unknown', from the first bytes only."""
    with open(path, "rb") as f:
        head = f.read(64)
        size = os.fstat(f.fileno()).st_size
    if not head:
        return "empty"
    if head.startswith(b"PK\x03\x04"):
        return "torch"
    if head.startswith(b"\x80\x02") and head[2:].startswith(_LEGACY_TORCH_MAGIC):
        return "torch"
    if len(head) > 8:
        header_len = int.from_bytes(head[:8], "little")
        if 0 < header_len <= size - 8 and head[8:9] == b"{":
            return "safetensors"
    if head[:1] == b"\x80" and 2 <= head[1] <= 5:
        return "pickle"
    return "unknown"


def _not_a_weight_file(path: Path, kind: str) -> WeightsError:
    if kind == "pickle":
        culprits = pickle_globals(path)
        if culprits:
            return WeightsError(
                f"{path}: refused: not a weight file but a plain Python pickle that would "
                f"import {', '.join(culprits[:3])}; it was not loaded"
            )
        return WeightsError(
            f"{path}: not a weight file (a plain Python pickle, neither safetensors "
            "nor a PyTorch checkpoint)"
        )
    what = "empty" if kind == "empty" else "neither safetensors nor a PyTorch checkpoint"
    return WeightsError(f"{path}: not a weight file ({what})")


def pickle_globals(path: Path, limit: int = 1 << 20) -> list[str]:
    """Names a bare pickle would import (GLOBAL/STACK_GLOBAL), read without executing it."""
    import pickletools

    found: list[str] = []
    strings: list[str] = []
    try:
        with open(path, "rb") as f:
            for opcode, arg, _ in pickletools.genops(f.read(limit)):
                if opcode.name == "GLOBAL":
                    found.append(str(arg).replace(" ", "."))
                elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append(f"{strings[-2]}.{strings[-1]}")
                elif isinstance(arg, str):
                    strings.append(arg)
    except Exception:  # truncated or invalid: report what was seen before the damage
        pass
    return list(dict.fromkeys(found))


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightsError(f"{path}: not a readable safetensors file ({err})") from None
    arch = metadata.get("architecture", ARCHITECTURE)
    if arch != ARCHITECTURE:
        raise WeightsError(f"{path}: architecture {arch!r} is not supported")
    return tensors, metadata


def read_official_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read DeepDeblur-PyTorch ``model-*.pt`` (``{'G': state_dict, 'D': ...}``) safely."""
    try:
        with warnings.catch_warnings():  # torch warns at length; our one-line error says it
            warnings.simplefilter("ignore")
            checkpoint = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's message advises weights_only=False, i.e. running the code: never repeat it.
        culprit = re.search(r"GLOBAL ([\w.]+)", str(err))
        what = f" ({culprit.group(1)})" if culprit else ""
        raise WeightsError(
            f"{path}: refused: the checkpoint holds pickled objects other than tensors{what}, "
            "which could run code; it was not loaded"
        ) from None
    except Exception as err:  # garbage makes the unpickler raise anything (KeyError, ...)
        raise WeightsError(f"{path}: not a PyTorch checkpoint ({_first_line(err)})") from None
    if isinstance(checkpoint, dict) and "G" in checkpoint and isinstance(checkpoint["G"], dict):
        state_dict = checkpoint["G"]
    elif isinstance(checkpoint, dict) and any(
        str(k).startswith("body_models.") for k in checkpoint
    ):
        state_dict = checkpoint
    else:
        raise WeightsError(f"{path}: not a DeepDeblur checkpoint (no 'G' generator state dict)")
    state_dict = {str(k).removeprefix("module."): v for k, v in state_dict.items()}
    if not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise WeightsError(f"{path}: not a DeepDeblur checkpoint (non-tensor entries)")
    return state_dict, {"source": f"official DeepDeblur-PyTorch checkpoint {path.name}"}


def convert_official(src: str | os.PathLike, dst: str | os.PathLike, **metadata: Any) -> WeightFile:
    """Convert an official checkpoint to our safetensors format, inferring its config."""
    src = Path(src)
    if not src.is_file():
        raise WeightsError(f"checkpoint not found: {src}")
    kind = sniff_format(src)
    if kind == "safetensors":
        raise WeightsError(f"{src}: already a safetensors file; pass it to --weights as it is")
    if kind != "torch":
        raise _not_a_weight_file(src, kind)
    state_dict, meta = read_official_checkpoint(src)
    try:
        config = infer_config(state_dict)
    except (KeyError, ValueError) as err:
        raise WeightsError(f"{src}: not a DeepDeblur multi-scale network ({err})") from None
    meta.update({"license": "MIT (DeepDeblur-PyTorch, 2018 Seungjun Nah)"})
    meta.update({k: v for k, v in metadata.items() if v is not None})
    save_weights(dst, state_dict, config, **meta)
    return WeightFile(state_dict, config, meta, Path(dst))


# --------------------------------------------------------------------------- resolution


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _hub_kwargs() -> dict[str, Any]:
    """Read HF_ENDPOINT / HF_HOME / HF_HUB_CACHE / HF_HUB_OFFLINE at call time, not import."""
    kwargs: dict[str, Any] = {}
    if os.environ.get("HF_ENDPOINT"):
        kwargs["endpoint"] = os.environ["HF_ENDPOINT"].rstrip("/")
    if os.environ.get("HF_HUB_CACHE"):
        kwargs["cache_dir"] = os.environ["HF_HUB_CACHE"]
    elif os.environ.get("HF_HOME"):
        kwargs["cache_dir"] = str(Path(os.environ["HF_HOME"]) / "hub")
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        kwargs["local_files_only"] = True
    return kwargs


def hub_download(repo_id: str, filename: str, revision: str = "main") -> Path:
    """``hf_hub_download`` into the standard cache, with errors turned into one line.

    Without a network, huggingface_hub retries for ~25 s and logs every try. One quick probe
    first (a single HEAD, no retries, ``HF_HUB_ETAG_TIMEOUT`` or 5 s) tells whether the Hub
    answers; if not, a cached copy is used as it is, else the error is one line at once.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    kwargs = _hub_kwargs()
    where = f"hf://{repo_id}/{filename}@{revision}"
    offline = bool(kwargs.get("local_files_only"))
    unreachable = None if offline else hub_unreachable(repo_id, filename, revision)
    if unreachable:
        kwargs["local_files_only"] = True
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, **kwargs))
    except LocalEntryNotFoundError:
        if unreachable:
            raise WeightsError(
                f"{where} is not in the local cache and the Hub cannot be reached ({unreachable})"
            ) from None
        hint = " (offline: HF_HUB_OFFLINE is set)" if offline else ""
        raise WeightsError(
            f"{where} is not in the local cache and cannot be fetched{hint}"
        ) from None
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as err:
        raise WeightsError(f"{where} not found on the Hub ({type(err).__name__})") from None
    except Exception as err:  # network stacks raise many types; the user needs one line
        raise WeightsError(f"download of {where} failed: {_first_line(err)}") from None


HUB_PROBE_TIMEOUT_S = 5.0
_RETRIED_STATUS = (408, 429, 500, 502, 503, 504)  # what huggingface_hub would retry for ~25 s


def hub_unreachable(repo_id: str, filename: str, revision: str = "main") -> str | None:
    """None when the Hub answers about this file (even 'not found'), else why not, briefly."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import HfHubHTTPError

    endpoint = _hub_kwargs().get("endpoint")
    url = hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint)
    timeout = float(os.environ.get("HF_HUB_ETAG_TIMEOUT") or HUB_PROBE_TIMEOUT_S)
    try:
        get_hf_file_metadata(url, timeout=timeout)
    except HfHubHTTPError as err:
        status = err.response.status_code if err.response is not None else None
        return f"HTTP {status} from {_host(url)}" if status in _RETRIED_STATUS else None
    except Exception as err:  # connection refused, DNS, timeout, proxy, TLS ...
        return f"{_host(url)}: {_first_line(err)}"
    return None


def _host(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _discard(path: Path) -> None:
    """Remove a cached file: the snapshot link and the blob it points to."""
    blob = path.resolve()
    for p in {path, blob}:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def verify(path: Path, expected_sha256: str, *, discard: bool) -> Path:
    actual = sha256_file(path)
    if actual != expected_sha256:
        if discard:
            _discard(path)
        removed = " (file removed)" if discard else ""
        raise WeightsError(
            f"sha256 mismatch for {path.name}: expected {expected_sha256[:12]}…, "
            f"got {actual[:12]}…{removed}"
        )
    return path


def fetch_entry(entry: RegistryEntry) -> Path:
    """The verified local file of a registry entry, downloading it if needed."""
    if entry.bundled:
        path = Path(str(registry_dir().joinpath(entry.bundled)))
        if not path.is_file():
            raise WeightsError(f"bundled weights {entry.bundled} are missing from the installation")
        return verify(path, entry.sha256, discard=False)
    assert entry.repo_id and entry.filename
    path = hub_download(entry.repo_id, entry.filename, entry.revision)
    return verify(path, entry.sha256, discard=True)


def parse_hf_url(spec: str) -> tuple[str, str, str]:
    """``hf://owner/repo/path/file.safetensors[@revision]`` → (repo_id, filename, revision)."""
    body = spec[len("hf://") :]
    revision = "main"
    if "@" in body:
        body, revision = body.rsplit("@", 1)
    parts = body.split("/")
    if len(parts) < 3 or not all(parts) or not revision:
        raise WeightsError(f"bad hf:// address {spec!r}: use hf://owner/repo/file[@revision]")
    return "/".join(parts[:2]), "/".join(parts[2:]), revision


def resolve_weights(spec: str | os.PathLike | None = None) -> Path:
    """Turn ``--weights`` into a verified local file (see the module docstring for the order)."""
    if spec is None or str(spec) == "":
        registry = load_registry()
        if not registry.default:
            raise WeightsError("no default weights configured in the registry")
        return fetch_entry(registry.get(registry.default))
    text = str(spec)
    if Path(text).is_file():
        return Path(text)
    if text.startswith("hf://"):
        repo_id, filename, revision = parse_hf_url(text)
        registry = load_registry()
        for entry in registry.entries.values():
            if (entry.repo_id, entry.filename, entry.revision) == (repo_id, filename, revision):
                return fetch_entry(entry)
        return hub_download(repo_id, filename, revision)
    registry = load_registry()
    if text in registry.entries:
        return fetch_entry(registry.entries[text])
    if os.sep in text or text.endswith((".safetensors", ".pt", ".pth")):
        raise WeightsError(f"weights file not found: {text}")
    known = ", ".join(sorted(registry.entries)) or "none"
    raise WeightsError(
        f"unknown weights {text!r}: not a file, hf:// address or registry name ({known})"
    )


def load_weight_file(spec: str | os.PathLike | None = None) -> WeightFile:
    return read_weights(resolve_weights(spec))
