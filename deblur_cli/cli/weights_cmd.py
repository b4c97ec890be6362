"""``deblur weights``: list, inspect, download and convert model files."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from .common import console

stdout = Console()  # listings are results, so they go to stdout (pipeable); status to stderr


@click.group("weights")
def weights() -> None:
    """Manage model weights (safetensors files).

    \b
    --weights accepts, in this order: a local file; hf://owner/repo/file[@revision];
    a registry name (see 'deblur weights list'); nothing = the bundled default.
    Downloads go to the Hugging Face cache (HF_HOME) and are checked by sha256;
    HF_HUB_OFFLINE=1 uses the cache only.
    """


@weights.command("list")
def list_() -> None:
    """Models in the registry and where each comes from."""
    from ..weights import load_registry

    registry = load_registry()
    table = Table(title="deblur weights")
    for column in ("name", "config", "source", "description"):
        table.add_column(column)
    for name, entry in sorted(registry.entries.items()):
        mark = " (default)" if name == registry.default else ""
        table.add_row(
            name + mark,
            entry.config.summary(),
            entry.source,
            entry.description,
        )
    stdout.print(table)


@weights.command("info")
@click.argument("spec")
def info(spec: str) -> None:
    """Config, metadata and checksum of a registry name, file or hf:// address."""
    from ..weights import read_weights, resolve_weights, sha256_file

    path = resolve_weights(spec)
    wf = read_weights(path)
    table = Table(show_header=False, title=str(spec))
    table.add_row("file", str(path))
    table.add_row("sha256", sha256_file(path))
    table.add_row("config", json.dumps(wf.config.to_dict()))
    params = sum(t.numel() for t in wf.state_dict.values())
    table.add_row("parameters", f"{params:,}")
    for key, value in sorted(wf.metadata.items()):
        if key != "config":
            table.add_row(key, str(value))
    stdout.print(table)


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
