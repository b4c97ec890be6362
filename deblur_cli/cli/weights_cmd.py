"""``deblur weights``: list, inspect, download and convert model files."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path

import click

from .common import console

# Metadata written as sentences: wrapped to a terminal; everything else is printed whole.
PROSE_FIELDS = frozenset({"description", "license", "training_data", "source"})


@click.group("weights")
def weights() -> None:
    """Manage model weights (safetensors files).

    \b
    --weights accepts, in this order: a local file; hf://owner/repo/file[@revision];
    a registry name (see 'deblur weights list'); nothing = the bundled default.
    Downloads go to the Hugging Face cache (HF_HOME) and are checked by sha256;
    HF_HUB_OFFLINE=1 uses the cache only.
    """


def _fields(rows: list[tuple[str, str]], prose: frozenset[str] = frozenset()) -> None:
    """``key  value`` lines on stdout. Values are never cut or folded — a path, a sha256 or
    a JSON value is copied whole from a terminal of any width and stays one line in a pipe;
    only prose (``prose`` keys) is wrapped, and only on a terminal."""
    indent = max(len(key) for key, _ in rows) + 2
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else 0
    for key, value in rows:
        if key in prose and width > indent + 20:
            lines = textwrap.wrap(value, width - indent) or [""]
            value = ("\n" + " " * indent).join(lines)
        click.echo(f"{key:<{indent}}{value}")


@weights.command("list")
def list_() -> None:
    """Models in the registry and where each comes from."""
    from ..weights import load_registry

    registry = load_registry()
    for i, (name, entry) in enumerate(sorted(registry.entries.items())):
        mark = " (default)" if name == registry.default else ""
        if i:
            click.echo()
        click.echo(f"{name}{mark}")
        rows = [("  config", entry.config.summary()), ("  source", entry.source)]
        rows += [("  description", entry.description)] if entry.description else []
        _fields(rows, prose=frozenset({"  description"}))


@weights.command("info")
@click.argument("spec")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout, for scripts.")
def info(spec: str, as_json: bool) -> None:
    """Config, metadata and checksum of a registry name, file or hf:// address."""
    from ..weights import read_weights, resolve_weights, sha256_file

    path = resolve_weights(spec)
    wf = read_weights(path)
    fields: dict[str, str] = {
        "file": str(path),
        "sha256": sha256_file(path),
        "config": json.dumps(wf.config.to_dict()),
        "parameters": f"{sum(t.numel() for t in wf.state_dict.values()):,}",
    }
    fields |= {key: str(value) for key, value in sorted(wf.metadata.items()) if key != "config"}
    if as_json:
        click.echo(json.dumps({"spec": spec, **fields}, indent=2))
        return
    _fields(list(fields.items()), prose=PROSE_FIELDS)


@weights.command("download")
@click.argument("names", nargs=-1, required=True)
def download(names: tuple[str, ...]) -> None:
    """Fetch registry models into the Hugging Face cache and verify them."""
    from ..weights import fetch_entry, load_registry

    registry = load_registry()
    for name in names:
        with console.status(f"fetching {name}…"):
            path = fetch_entry(registry.get(name))
        console.print(f"{name}: [green]ok[/green] {path}")


@weights.command("convert")
@click.argument("src", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    "dst",
    type=click.Path(path_type=Path),
    required=True,
    help="Destination .safetensors file.",
)
@click.option("--training-data", default=None, help="Recorded in the file's metadata.")
def convert(src: Path, dst: Path, training_data: str | None) -> None:
    """Convert an official DeepDeblur-PyTorch checkpoint (model-*.pt) to safetensors.

    The file is read with torch.load(weights_only=True): a checkpoint that holds pickled
    code is refused. The config (scales, blocks, features, kernel) is read off the tensors.
    """
    from ..weights import convert_official

    wf = convert_official(src, dst, training_data=training_data)
    console.print(f"{src} → [bold]{dst}[/bold]: {wf.config.summary()}")


COMMANDS = [weights]
