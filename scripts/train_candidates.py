"""Train several default-model candidates side by side on one GPU, in a fixed time.

    python scripts/train_candidates.py DATA_DIR RUNS_DIR --minutes 8.5 \
        --init runs/light-gopro/light-gopro.safetensors

Stage 3 of the bundled default's recipe (stages 1-2: ``scripts/train_default.sh``, whose
9-block result is ``--init``). The network must stay fast on a CPU, so the candidates differ
in ResBlocks per scale; each starts from ``--init`` trimmed by ``scripts/trim_blocks.py`` and
is fine-tuned with ``deblur train``. The 7-block one (``b7``) became ``light-gopro``.
A small network leaves most of a GPU idle, so all candidates train at once, each with its
own DataLoader workers.

A budget in minutes, not steps, because a lent GPU comes with minutes: a short calibration
run of every candidate (all at once, so contention is measured too) gives steps per second,
and the real runs get the number of steps that ends their cosine schedule inside the budget.
That number is printed, kept in ``RUNS_DIR/plan.json`` and in each run's ``NAME.cmd``, so a
run can be repeated exactly with ``deblur train --steps N``. Each run's folder keeps its
checkpoint: running this again resumes the runs with the same plan.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Runs from a source checkout too (no pip install on a lent GPU machine).
sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))


@dataclass
class Candidate:
    name: str
    blocks: int  # ResBlocks per scale; the rest of the config is the light one
    lr: float


CANDIDATES = [Candidate("b9", 9, 2e-4), Candidate("b8", 8, 3e-4), Candidate("b7", 7, 3e-4)]


def data_args(data: Path) -> list[str]:
    """GOPRO frames (listed twice: ~3 in 4 patches) plus camera shake on sharp photos."""
    specs = [f"frames:{data}/frames", f"frames:{data}/frames"]
    for name in ("kodak24crop_ffdnet", "mcmaster18_ffdnet"):
        if (data / "sharp" / name).is_dir():
            specs.append(f"stills:{data}/sharp/{name}")
    return specs


def train_command(args: argparse.Namespace, c: Candidate, init: Path, out: Path, steps: int):
    return [
        sys.executable, "-m", "deblur_cli", "train", *data_args(args.data),
        "--init", str(init), "--lr", str(c.lr), "--steps", str(steps),
        "--batch", str(args.batch), "--patch", str(args.patch), "--schedule", "cosine",
        "--min-lr", "1e-6", "--amp", args.amp, "--workers", str(args.workers),
        "--frames-gamma", "1,2.2", "--synth-opt", "blur=[0.005,0.06]", "--noise", "1",
        "--val-every", str(args.val_every), "--checkpoint-every", str(args.val_every),
        "--log-every", str(args.log_every), "--out", str(out),
    ]  # fmt: skip


def start(cmd: list[str], log: Path) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="2", PYTHONUNBUFFERED="1", COLUMNS="120")
    with open(log, "a") as f:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)


def last_step_and_rate(log_csv: Path, skip: int) -> tuple[int, float | None]:
    if not log_csv.is_file():
        return 0, None
    with open(log_csv, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("steps_per_s")]
    if not rows:
        return 0, None
    rates = [float(r["steps_per_s"]) for r in rows if int(r["step"]) > skip]
    return int(rows[-1]["step"]), (statistics.median(rates) if rates else None)


def stop_all(procs: list[subprocess.Popen], grace: float = 60.0) -> None:
    """Ctrl-C for each run (it checkpoints at the next step), then wait."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    end = time.time() + grace
    for p in procs:
        try:
            p.wait(timeout=max(1.0, end - time.time()))
        except subprocess.TimeoutExpired:
            p.kill()


def finish_command(args: argparse.Namespace, c: Candidate, init: Path, steps: int) -> list[str]:
    """The real run of a candidate: its own folder, exporting its last step."""
    target = args.runs / f"{c.name}.safetensors"
    cmd = train_command(args, c, init, args.runs / c.name, steps)
    return cmd + ["--export", str(target), "--export-last"]


def export_stopped_run(args: argparse.Namespace, c: Candidate, init: Path) -> None:
    """A run the deadline stopped has exported nothing. Running it again with ``--steps`` at
    its checkpoint's step trains nothing and exports like a finished run (same metadata)."""
    if (args.runs / f"{c.name}.safetensors").is_file():
        return
    checkpoint = args.runs / c.name / "checkpoint.pt"
    if not checkpoint.is_file():
        return
    import torch

    step = int(torch.load(checkpoint, map_location="cpu", weights_only=True)["step"])
    start(finish_command(args, c, init, step), args.runs / f"{c.name}.log").wait()
    print(f"{c.name}: stopped by the deadline, exported at step {step}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="folder with frames/ and sharp/ (../shared/data)")
    parser.add_argument("runs", type=Path, help="where the run folders go")
    parser.add_argument("--minutes", type=float, default=8.5, help="whole budget, calibration in")
    parser.add_argument(
        "--init", type=Path, required=True, help="the 9-block stage-2 model to trim and tune"
    )
    parser.add_argument("--only", nargs="*", help="candidate names (default: all)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=256)
    parser.add_argument("--amp", default="bf16")
    parser.add_argument("--workers", type=int, default=5)
    parser.add_argument("--val-every", type=int, default=1000)
    parser.add_argument("--log-every", type=int, default=50)
    parser.add_argument("--calibrate-steps", type=int, default=300)
    parser.add_argument("--reserve", type=float, default=45.0, help="seconds kept for the end")
    args = parser.parse_args()
    deadline = time.time() + args.minutes * 60
    args.runs.mkdir(parents=True, exist_ok=True)
    args.data = args.data.resolve()
    candidates = [c for c in CANDIDATES if not args.only or c.name in args.only]

    inits = {}
    for c in candidates:
        inits[c.name] = args.runs / f"init-{c.name}.safetensors"
        if not inits[c.name].is_file():
            subprocess.run(
                [sys.executable, str(ROOT / "scripts/trim_blocks.py"), str(args.init),
                 str(c.blocks), str(inits[c.name])],
                check=True, cwd=ROOT,
            )  # fmt: skip

    plan_file = args.runs / "plan.json"
    plan = json.loads(plan_file.read_text()) if plan_file.is_file() else {}
    if not plan:
        # Calibration: every candidate at once for a few hundred steps.
        procs, logs = [], {}
        for c in candidates:
            out = args.runs / f"calibrate-{c.name}"
            logs[c.name] = out / "log.csv"
            cmd = train_command(args, c, inits[c.name], out, 10**6)
            cmd += ["--val-count", "0", "--log-every", "25", "--restart"]
            procs.append(start(cmd, args.runs / f"calibrate-{c.name}.log"))
        t0 = time.time()
        while True:
            time.sleep(2)
            steps = {n: last_step_and_rate(p, 0)[0] for n, p in logs.items()}
            failed = [p for p in procs if p.poll() is not None]
            if failed or min(steps.values()) >= args.calibrate_steps:
                break
            if time.time() - t0 > 0.4 * args.minutes * 60:
                print("calibration is slow; using what it measured so far", flush=True)
                break
        stop_all(procs)
        skip = args.calibrate_steps // 3  # DataLoader start and decode caches warm up first
        rates = {n: last_step_and_rate(p, skip)[1] for n, p in logs.items()}
        if any(r is None for r in rates.values()):
            for c in candidates:
                print((args.runs / f"calibrate-{c.name}.log").read_text()[-3000:])
            sys.exit(f"calibration failed: rates {rates}")
        seconds = deadline - time.time() - args.reserve
        plan = {
            c.name: {
                "steps": int(rates[c.name] * seconds * 0.9),
                "steps_per_s": round(rates[c.name], 2),
                "blocks": c.blocks,
                "lr": c.lr,
            }
            for c in candidates
        }
        plan_file.write_text(json.dumps(plan, indent=2))
    print("plan:", json.dumps(plan), flush=True)

    procs = []
    for c in candidates:
        cmd = finish_command(args, c, inits[c.name], plan[c.name]["steps"])
        (args.runs / f"{c.name}.cmd").write_text(" ".join(cmd) + "\n")
        procs.append(start(cmd, args.runs / f"{c.name}.log"))
    while any(p.poll() is None for p in procs) and time.time() < deadline - 10:
        time.sleep(2)
    stop_all(procs, grace=30)
    for c in candidates:
        export_stopped_run(args, c, inits[c.name])
    for c, p in zip(candidates, procs, strict=True):
        step, rate = last_step_and_rate(args.runs / c.name / "log.csv", 0)
        print(f"{c.name}: exit {p.returncode}, step {step}/{plan[c.name]['steps']}, "
              f"{rate or 0:.1f} steps/s", flush=True)  # fmt: skip
        print("  " + (args.runs / f"{c.name}.log").read_text()[-600:].replace("\n", "\n  "))


if __name__ == "__main__":
    main()
