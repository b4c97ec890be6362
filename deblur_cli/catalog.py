"""The registry of named models (``weights/registry.toml``), readable without torch.

``deblur weights list`` and name checks only read this TOML; loading a model's tensors is
:mod:`deblur_cli.weights`' job. Keeping the two apart saves importing torch (seconds).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import WeightsError
from .model_config import CONFIGS, ModelConfig

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REGISTRY_PACKAGE = "deblur_cli.registry"
REGISTRY_FILE = "registry.toml"


@dataclass
class RegistryEntry:
    """One named model: where its file comes from and the sha256 it must have."""

    name: str
    sha256: str
    config: ModelConfig
    description: str = ""
    bundled: str | None = None  # file name inside the deblur_cli.registry package
    repo_id: str | None = None
    filename: str | None = None
    revision: str = "main"
    license: str = ""
    training_data: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        if self.bundled:
            return f"bundled ({self.bundled})"
        return f"hf://{self.repo_id}/{self.filename}@{self.revision}"


@dataclass
class Registry:
    default: str
    entries: dict[str, RegistryEntry]

    def get(self, name: str) -> RegistryEntry:
        if name not in self.entries:
            known = ", ".join(sorted(self.entries)) or "none"
            raise WeightsError(f"unknown weights {name!r} (known: {known})")
        return self.entries[name]


def _parse_entry(name: str, raw: dict[str, Any], origin: str) -> RegistryEntry:
    try:
        config_raw = raw["config"]
        if isinstance(config_raw, str):
            config = CONFIGS[config_raw]
        else:
            config = ModelConfig.from_dict(config_raw)
        entry = RegistryEntry(
            name=name,
            sha256=str(raw["sha256"]).lower(),
            config=config,
            description=raw.get("description", ""),
            bundled=raw.get("bundled"),
            repo_id=raw.get("repo_id"),
            filename=raw.get("filename"),
            revision=str(raw.get("revision", "main")),
            license=raw.get("license", ""),
            training_data=raw.get("training_data", ""),
            metrics=dict(raw.get("metrics", {})),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise WeightsError(f"{origin}: bad registry entry {name!r} ({err})") from None
    if not entry.bundled and not (entry.repo_id and entry.filename):
        raise WeightsError(f"{origin}: entry {name!r} needs 'bundled' or 'repo_id' + 'filename'")
    return entry


def registry_dir() -> Traversable:
    """The installed registry package, or the repository's ``weights/`` folder when the code
    runs straight from a source checkout (``python -m pytest`` in the repo imports that)."""
    try:
        return resources.files(REGISTRY_PACKAGE)
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "weights"


def load_registry() -> Registry:
    """The packaged registry, extended (and overridden by name) by ``$DEBLUR_REGISTRY``."""
    text = registry_dir().joinpath(REGISTRY_FILE).read_text("utf-8")
    sources = [(f"{REGISTRY_PACKAGE}/{REGISTRY_FILE}", text)]
    extra = os.environ.get("DEBLUR_REGISTRY")
    if extra:
        try:
            sources.append((extra, Path(extra).read_text("utf-8")))
        except OSError as err:
            raise WeightsError(f"cannot read $DEBLUR_REGISTRY {extra}: {err.strerror}") from None
    default = ""
    entries: dict[str, RegistryEntry] = {}
    for origin, body in sources:
        try:
            data = tomllib.loads(body)
        except tomllib.TOMLDecodeError as err:
            raise WeightsError(f"{origin}: invalid TOML ({err})") from None
        default = data.get("default", default)
        for name, raw in data.get("models", {}).items():
            entries[name] = _parse_entry(name, raw, origin)
    return Registry(default, entries)
