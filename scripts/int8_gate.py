"""The quality gate of ``--precision int8`` (issue #23), measured as ``deblur eval`` measures.

    python scripts/int8_gate.py                          # the bundled model, this CPU
    ONEDNN_MAX_CPU_ISA=AVX2 python scripts/int8_gate.py  # as on an AVX2 CPU without VNNI

Per set, int8 and fp32 run on the same whole images through ``deblur eval``'s own code
(deblur_cli.train.evaluate: PSNR against ground truth, clamp+round, range 255; the do-no-harm
check on sharp photos). Printed: PSNR of int8 output against fp32 output (mean over the
set's images and the worst image; gate >= 45 dB), each set's PSNR against ground truth in
fp32 and int8 (gate: within 0.05 dB), and on sharp photos the tone shift and the PSNR of
output against input (gate: within 0.1 grey level and 0.5 dB of fp32).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from deblur_cli.engine import load_model
from deblur_cli.quantize import GATE_PSNR_DB, cpu_isa, cpu_kind, psnr
from deblur_cli.train.data import open_source
from deblur_cli.train.evaluate import check_sharp, evaluate_pairs

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MAX_GT_DB, MAX_SHIFT, MAX_SHARP_DB = 0.05, 0.1, 0.5


class Recorder:
    """The model as ``deblur eval`` calls it, keeping every output in call order."""

    def __init__(self, model) -> None:
        self.model, self.outputs = model, []

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        out = self.model(pixels)
        self.outputs.append(out)
        return out


def reds_test003(tmp: Path) -> Path:
    """REDS x4 clip test003 alone (held out of training), as a blur/ + sharp/ folder."""
    for kind in ("blur", "sharp"):
        (tmp / kind).mkdir(parents=True)
        for path in sorted((DATA / "pairs/reds_x4" / kind).glob("test003_*.png")):
            (tmp / kind / path.name).symlink_to(path)
    return tmp


def run_set(kind: str, where, weights: str | None) -> dict:
    """fp32 and int8 on one set: scores and the int8-vs-fp32 PSNR per image."""
    result = {}
    outputs = {}
    for precision in ("fp32", "int8"):
        model = Recorder(load_model(weights, "cpu", precision, tile=0))
        if kind == "pairs":
            scores = evaluate_pairs(open_source(str(where), "auto"), model)
            result[precision] = {"psnr": scores["mean"]["model"]["psnr"]}
        else:
            check = check_sharp(where, model)
            mean = check["mean"]
            result[precision] = {"tone_shift": mean["shift"]["all"], "psnr_in_out": mean["psnr"]}
        result[precision]["ran"] = model.model.precision
        outputs[precision] = model.outputs
    vs = [psnr(a, b) for a, b in zip(outputs["int8"], outputs["fp32"], strict=True)]
    result["int8_vs_fp32"] = {"mean": float(np.mean(vs)), "worst": float(min(vs)), "n": len(vs)}
    return result


def verdict(name: str, r: dict) -> list[str]:
    fails = []
    if r["int8_vs_fp32"]["worst"] < GATE_PSNR_DB:
        fails.append(f"{name}: int8 vs fp32 {r['int8_vs_fp32']['worst']:.2f} dB")
    if "psnr" in r["fp32"] and abs(r["int8"]["psnr"] - r["fp32"]["psnr"]) > MAX_GT_DB:
        fails.append(f"{name}: PSNR vs ground truth moved by more than {MAX_GT_DB} dB")
    if "tone_shift" in r["fp32"]:
        if abs(r["int8"]["tone_shift"] - r["fp32"]["tone_shift"]) > MAX_SHIFT:
            fails.append(f"{name}: tone shift moved by more than {MAX_SHIFT} level")
        if abs(r["int8"]["psnr_in_out"] - r["fp32"]["psnr_in_out"]) > MAX_SHARP_DB:
            fails.append(f"{name}: sharp in/out PSNR moved by more than {MAX_SHARP_DB} dB")
    return fails


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None)
    parser.add_argument("--sharp-count", type=int, default=20)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"error: {DATA} not found", file=sys.stderr)
        return 2
    print(f"CPU kind (oneDNN): {cpu_isa()}: {cpu_kind()}")
    sharp = sorted((DATA / "sharp/bsds300_dcscn/bsd100").iterdir())[: args.sharp_count]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        sets = {
            "gopro_style_train_scenes": ("pairs", DATA / "eval/gopro_style_train_scenes"),
            "gopro_test_scenes": ("pairs", DATA / "eval/gopro_test_scenes"),
            "reds_x4 test003": ("pairs", reds_test003(Path(tmp) / "reds")),
            f"{len(sharp)} sharp photos (BSDS bsd100)": ("sharp", sharp),
        }
        for name, (kind, where) in sets.items():
            results[name] = run_set(kind, where, args.weights)
            print(name, json.dumps(results[name]), flush=True)
    header = (
        f"{'set':34s} {'int8 vs fp32 dB (mean/worst)':>29s} {'fp32 vs GT':>10s} "
        f"{'int8 vs GT':>10s} {'Δ dB':>6s} {'tone fp32/int8':>15s} {'in/out dB fp32/int8':>20s}"
    )
    print(header)
    fails = []
    for name, r in results.items():
        vs = r["int8_vs_fp32"]
        a, b = r["fp32"], r["int8"]
        cells = f"{name:34s} {vs['mean']:>20.2f} / {vs['worst']:5.2f} "
        if "psnr" in a:
            cells += f"{a['psnr']:10.2f} {b['psnr']:10.2f} {b['psnr'] - a['psnr']:+6.3f}"
        else:
            cells += f"{'':10s} {'':10s} {'':6s} {a['tone_shift']:+7.3f}/{b['tone_shift']:+7.3f}"
            cells += f" {a['psnr_in_out']:9.2f}/{b['psnr_in_out']:.2f}"
        print(cells)
        fails += verdict(name, r)
    print("gate: " + ("PASSES" if not fails else "FAILS: " + "; ".join(fails)))
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_kind(), "sets": results}, indent=1))
    return 0 if not fails else 1


if __name__ == "__main__":
    raise SystemExit(main())
