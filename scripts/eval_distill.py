"""Score students and their teacher on every set that judges a distillation (issue #21).

    python scripts/eval_distill.py ../shared/data runs/eval light-gopro runs/s1.safetensors \
        --teacher ../shared/teachers/dmphn_1_2_4_gopro.safetensors

Sets: ``gopro_test_scenes`` (GOPRO *test* scenes: the honest check, never seen by the
teacher), REDS x4 clip test003 (held out of all our training), Levin 2009, and
``gopro_style_train_scenes`` (reported only: the teacher saw those scenes); then the do-no-harm
check on 113 sharp photos (the 7 GOPRO sharp frames, BSDS bsd100, DIV2K 6), and with
``--bank DIR`` how much of the teacher's correction a student reproduces on crops it never
trained on (``match``: 1 - L1(student, teacher) / L1(blurry, teacher); 0 = the blurry input,
1 = the teacher). Scores follow
``deblur eval`` (clamp + round, PSNR range 255); students run in ``--precision`` (bf16 by
default, as the model card's tables), whole images. Each (model, set) result is kept as JSON
in OUT, so an interrupted run resumes and a new model costs only its own evaluation.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np

from deblur_cli.train.data import open_source
from deblur_cli.train.evaluate import check_sharp, evaluate_pairs
from deblur_cli.train.source import list_images
from deblur_cli.train.teacher import load_teacher

PAIR_SETS = {
    "gopro_test": "eval/gopro_test_scenes",
    "reds_test003": None,  # made from pairs/reds_x4 (files test003_*)
    "levin": "eval/levin2009",
    "gopro_train_scenes": "eval/gopro_style_train_scenes",
}
SHARP_DIRS = ["eval/gopro_style_train_scenes/sharp", "sharp/bsds300_dcscn/bsd100"]
SHARP_DIRS += ["sharp/div2k_valid6_wolberg"]


def reds_test003(data: Path, out: Path) -> Path:
    """A pairs folder of REDS x4 clip test003 (links), the clip no training run here saw."""
    folder = out / "reds_test003"
    for sub in ("blur", "sharp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        for path in sorted((data / "pairs/reds_x4" / sub).glob("test003_*.png")):
            link = folder / sub / path.name
            if not link.exists():
                link.symlink_to(path.resolve())
    return folder


def teacher_match(bank: Path, model) -> dict[str, float]:
    """The share of the teacher's correction (its output minus the input) a model makes."""
    from deblur_cli.train.bank import open_bank
    from deblur_cli.train.source import load_rgb

    source = open_bank(bank)
    to_teacher = from_input = 0.0
    for name in source.names:
        blur = np.ascontiguousarray(load_rgb(bank / "blur" / f"{name}.png"))
        target = load_rgb(bank / "teacher" / f"{name}.png").astype(np.float32)
        out = model(blur).astype(np.float32)
        to_teacher += float(np.abs(out - target).mean())
        from_input += float(np.abs(blur.astype(np.float32) - target).mean())
    return {"match": 1 - to_teacher / from_input, "l1": to_teacher / len(source.names)}


def slug(spec: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(spec).stem if "/" in spec else spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="../shared/data")
    parser.add_argument("out", type=Path, help="folder for the per-set JSON results")
    parser.add_argument("models", nargs="*", help="weights specs (registry name, file)")
    parser.add_argument("--teacher", action="append", default=[], help="teacher file(s)")
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--sets", default=",".join([*PAIR_SETS, "sharp"]))
    parser.add_argument("--teacher-sharp", action="store_true", help="also the sharp check")
    parser.add_argument("--bank", type=Path, help="held-out teacher bank: the 'match' column")
    args = parser.parse_args()
    from deblur_cli.engine import load_model

    args.out.mkdir(parents=True, exist_ok=True)
    wanted = args.sets.split(",") + (["match"] if args.bank else [])
    entries = [("identity", None, "identity")] + [(slug(m), m, "student") for m in args.models]
    entries += [(f"teacher-{slug(t)}", t, "teacher") for t in args.teacher]
    table = []
    for name, spec, kind in entries:
        model = None
        row = {"model": name}
        for set_name in wanted:
            if set_name == "sharp" and (
                kind == "identity" or kind == "teacher" and not args.teacher_sharp
            ):
                continue
            if set_name == "match" and kind != "student":
                continue
            cache = args.out / f"{name}.{set_name}.json"
            if not cache.is_file():
                if model is None and kind != "identity":
                    if kind == "teacher":
                        model = load_teacher(spec, "cpu", args.precision).restore
                    else:
                        model = load_model(spec, "cpu", args.precision, tile=0)
                start = time.perf_counter()
                if set_name == "match":
                    summary = teacher_match(args.bank, model)
                elif set_name == "sharp":
                    paths = [p for d in SHARP_DIRS for p in list_images(args.data / d)]
                    result = check_sharp(paths, model)
                    summary = {"shift": result["mean"]["shift"]["all"],
                               "psnr": result["mean"]["psnr"], "n": len(paths)}  # fmt: skip
                else:
                    folder = PAIR_SETS[set_name]
                    root = reds_test003(args.data, args.out) if folder is None else (
                        args.data / folder)  # fmt: skip
                    result = evaluate_pairs(open_source(f"pairs:{root}"), model)
                    key = "identity" if model is None else "model"
                    summary = {"psnr": result["mean"][key]["psnr"], "n": len(result["images"])}
                summary["seconds"] = time.perf_counter() - start
                cache.write_text(json.dumps(summary))
                print(f"{name} {set_name}: {summary}", flush=True)
            row[set_name] = json.loads(cache.read_text())
        table.append(row)
    header = [s for s in wanted]
    print("| model | " + " | ".join(header) + " |")
    print("|---|" + "---|" * len(header))
    for row in table:
        cells = []
        for s in header:
            value = row.get(s)
            if value is None:
                cells.append("")
            elif s == "match":
                cells.append(f"{value['match']:.3f}")
            elif s == "sharp":
                cells.append(f"{value['shift']:+.2f} / {value['psnr']:.2f}")
            else:
                cells.append(f"{value['psnr']:.2f}")
        print(f"| {row['model']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
