"""``deblur weights``: list, inspect, download and convert model files."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path

import click

from .common import console, middle_ellipsis

LIST_WIDTH = 80  # 'deblur weights list': one line per model, in a terminal of any width

# Metadata written as sentences: wrapped to a terminal; everything else is printed whole.
PROSE_FIELDS = frozenset({"description", "license", "training_data", "source"})


@click.group("weights")
def weights() -> None:
    """Manage model weights (safetensors files).

    \b
    --weights accepts, in this order: a local file;
    hf://owner/repo/file[@revision]; a registry name (see 'deblur weights
    list'); nothing = the bundled default. Downloads go to the Hugging Face
    cache (HF_HOME) and are checked by sha256; HF_HUB_OFFLINE=1 uses the cache
    only.
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
    """Models in the registry, one line each (details: 'deblur weights info NAME')."""
    from ..catalog import load_registry

    registry = load_registry()
    rows = [("name", "source", "scales", "blocks", "feats", "kernel", "summary")]
    for name, entry in sorted(registry.entries.items()):
        c = entry.config
        rows.append(
            (
                name + ("*" if name == registry.default else ""),
                "bundled" if entry.source.startswith("bundled") else "download",
                str(c.n_scales),
                str(c.n_resblocks),
                str(c.n_feats),
                f"{c.kernel_size}x{c.kernel_size}",
                _headline(entry.description),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        click.echo(line + "  " + middle_ellipsis(row[-1], max(8, LIST_WIDTH - len(line) - 2)))
    default = "* the default. " if registry.default else ""
    click.echo(f"{default}Source, licence, data and scores: deblur weights info NAME")


def _headline(description: str) -> str:
    """The first phrase of a description: up to its first colon, bracket or full stop."""
    for stop in (":", " (", ". ", ";"):
        description = description.split(stop, 1)[0]
    return description.strip()


@weights.command("info")
@click.argument("spec")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout, for scripts.")
def info(spec: str, as_json: bool) -> None:
    """Config, metadata and checksum of a registry name, file or hf:// address."""
    from ..weights import load_registry, read_weights, resolve_weights, sha256_file

    path = resolve_weights(spec)
    wf = read_weights(path)
    entry = load_registry().entries.get(spec)  # a registry name: where its file comes from
    parameters = sum(t.numel() for t in wf.state_dict.values())
    metadata = {key: value for key, value in sorted(wf.metadata.items()) if key != "config"}
    if as_json:
        record = {
            "spec": spec,
            "file": str(path),
            **({"registry": entry.source} if entry else {}),
            "sha256": sha256_file(path),
            "config": wf.config.to_dict(),
            "parameters": parameters,
            **{key: _typed(value) for key, value in metadata.items()},
        }
        click.echo(json.dumps(record, indent=2, ensure_ascii=False))
        return
    rows = [("file", str(path)), *([("registry", entry.source)] if entry else [])]
    rows += [
        ("sha256", sha256_file(path)),
        ("config", json.dumps(wf.config.to_dict())),
        ("parameters", f"{parameters:,}"),
    ]
    _fields(rows + [(key, str(value)) for key, value in metadata.items()], prose=PROSE_FIELDS)


def _typed(value: object) -> object:
    """A metadata value as its JSON type: safetensors stores every value as a string, and
    structured ones (metrics, numbers) were written as JSON text."""
    if not isinstance(value, str):
        return value
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    return parsed if isinstance(parsed, (dict, list, int, float)) else value


@weights.command("download")
@click.argument("names", nargs=-1, required=True)
def download(names: tuple[str, ...]) -> None:
    """Fetch registry models into the Hugging Face cache and verify them."""
    from ..weights import fetch_entry, load_registry

    registry = load_registry()
    for name in names:
        with console.status(f"fetching {name}…"):
            path = fetch_entry(registry.get(name))
        console.print(f"{name}: [green]ok[/green] {path}", highlight=False)


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
