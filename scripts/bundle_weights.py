"""Bundle a trained weight file as a registry entry shipped inside the package.

    python scripts/bundle_weights.py runs/light/best.safetensors light-gopro \
        --description "..." --training-data "..." --license "..."

Rewrites the file into weights/NAME.safetensors with full metadata, then adds or replaces
the [models.NAME] entry (config, bundled file name, sha256) in weights/registry.toml, and
(with ../shared/data present) writes weights/NAME.int8.json, the int8 calibration.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from calibrate_int8 import DATA, write_calibration  # scripts/ is on sys.path

from deblur_cli.weights import read_weights, save_weights, sha256_file

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"


def flatten(metrics: dict, prefix: str = "") -> dict:
    """{"val": {"psnr": 22.2}} → {"val_psnr": 22.2}: TOML inline tables are not JSON."""
    flat = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}_"))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("name")
    parser.add_argument("--description", default="")
    parser.add_argument("--training-data", default="")
    parser.add_argument("--license", default="")
    parser.add_argument("--metrics", default="{}", help="JSON object")
    parser.add_argument(
        "--no-int8", action="store_true", help="skip scripts/calibrate_int8.py (NAME.int8.json)"
    )
    args = parser.parse_args()

    wf = read_weights(args.source)
    metrics = {**json.loads(wf.metadata.get("metrics", "{}")), **json.loads(args.metrics)}
    target = WEIGHTS / f"{args.name}.safetensors"
    save_weights(
        target,
        wf.state_dict,
        wf.config,
        description=args.description,
        training_data=args.training_data,
        license=args.license,
        metrics=metrics,
    )
    digest = sha256_file(target)
    c = wf.config
    metric_items = ", ".join(f"{k} = {json.dumps(v)}" for k, v in sorted(flatten(metrics).items()))
    entry = (
        f"[models.{args.name}]\n"
        f"description = {json.dumps(args.description)}\n"
        f"config = {{ n_scales = {c.n_scales}, n_resblocks = {c.n_resblocks}, "
        f"n_feats = {c.n_feats}, kernel_size = {c.kernel_size}, "
        f"residual = {str(c.residual).lower()} }}\n"
        f'bundled = "{target.name}"\n'
        f'sha256 = "{digest}"\n'
        f"license = {json.dumps(args.license)}\n"
        f"training_data = {json.dumps(args.training_data)}\n"
        f"metrics = {{ {metric_items} }}\n"
    )
    registry = WEIGHTS / "registry.toml"
    text = registry.read_text()
    pattern = re.compile(rf"\[models\.{re.escape(args.name)}\]\n(?:(?!\[).*\n?)*", re.MULTILINE)
    text = pattern.sub("", text).rstrip() + "\n\n" + entry
    registry.write_text(text)
    print(f"{target} sha256 {digest}")
    if DATA.is_dir() and not args.no_int8:  # --precision int8 needs the model's calibration
        write_calibration(str(target), data=DATA)


if __name__ == "__main__":
    main()
