"""Start-up time of the ``deblur`` command: every ``--help`` and the time to a first error.

Each command runs in a fresh interpreter (``python -m deblur_cli ...``), the way a user runs
it; variants are interleaved run by run so that machine noise hits them alike. The goal is
``--help`` <= 0.3 s everywhere (the heavy stack — torch ~1.3 s, cv2, PyAV — is imported only
by the commands that use it), and as much for an input refused from its bytes (an empty file,
a picture under the minimum size) or an option refused while parsing (``--tile 3``).
``--ref`` also times another git revision of the package, checked out into a temporary
folder, and prints the ratio.

    python benchmarks/bench_startup.py --runs 7
    python benchmarks/bench_startup.py --runs 7 --ref HEAD~3
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_S = 0.3

COMMANDS = [
    ["--help"],
    *[[verb, "--help"] for verb in ("image", "batch", "video", "weights", "train", "eval")],
    ["synth", "frames", "--help"],
    ["demo", "--help"],
    ["weights", "list"],
    ["image", "no-such-file.png"],  # time to the first error line: what a typo costs
    ["image", "{empty}"],  # refused from its bytes, before torch (goal 0.3 s)
    ["image", "{tiny4}"],  # 4x4: under the 8x8 minimum, refused from its header
    ["image", "{tiny}", "--tile", "3"],  # a tile that cannot work: refused while parsing
    ["image", "{tiny}", "-o", "{out}", "--device", "cpu", "--overwrite"],  # a whole run, 64x64
]


def time_once(argv: list[str], source: Path, files: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child): on a busy machine the wall time inflates
    with the load, the CPU time much less."""
    argv = [arg.format(**files) for arg in argv]
    env = {**os.environ, "PYTHONPATH": str(source)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "deblur_cli", *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tempfile.gettempdir(),
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def export_ref(ref: str, into: Path) -> Path:
    """``git archive REF deblur_cli`` unpacked into ``into``: the package at that revision."""
    archive = subprocess.run(
        ["git", "archive", ref, "deblur_cli", "weights"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--ref", default=None, help="git revision to compare against")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        sources = {"now": ROOT}
        if args.ref:
            sources[args.ref] = export_ref(args.ref, Path(tmp) / "ref")
        files = {
            "tiny": str(Path(tmp) / "tiny.png"),
            "out": str(Path(tmp) / "out.png"),
            "empty": str(Path(tmp) / "empty.jpg"),
            "tiny4": str(Path(tmp) / "tiny4.png"),
        }
        _write_tiny_png(Path(files["tiny"]))
        _write_tiny_png(Path(files["tiny4"]), side=4)
        Path(files["empty"]).touch()
        floor: list[float] = []
        times: dict[str, dict[str, list[float]]] = {}
        for _ in range(args.runs):
            floor.append(_time_python())
            for argv in COMMANDS:
                for name, source in sources.items():
                    sample = time_once(argv, source, files)
                    times.setdefault(" ".join(argv), {}).setdefault(name, []).append(sample)

    print(f"python {sys.version.split()[0]}, {args.runs} runs each, interleaved")
    print(f"interpreter floor (python -c pass): {statistics.median(floor):.3f} s wall median")
    print("wall = seconds the user waits; cpu = user+sys seconds of the child process\n")
    header = f"{'deblur ...':<36} {'wall s':>7} {'min-max':>13} {'cpu s':>6}"
    if args.ref:
        header += f" {args.ref + ' wall':>14} {'ratio':>6}"
    print(header + f"  goal {GOAL_S} s (wall, cpu)")
    shown = {"tiny": "tiny.png", "out": "out.png", "empty": "empty.jpg", "tiny4": "tiny4.png"}
    for argv in COMMANDS:
        samples = times[" ".join(argv)]
        wall = [w for w, _ in samples["now"]]
        cpu = statistics.median(c for _, c in samples["now"])
        label = " ".join(arg.format(**shown) for arg in argv)
        row = f"{label:<36} {statistics.median(wall):>7.3f} "
        row += f"{min(wall):>6.3f}-{max(wall):<6.3f} {cpu:>6.3f}"
        if args.ref:
            ref = statistics.median(w for w, _ in samples[args.ref])
            row += f" {ref:>14.3f} {ref / statistics.median(wall):>5.1f}x"
        if "--help" in argv or argv[-1] in ("{empty}", "{tiny4}", "3"):
            marks = ["ok" if v <= GOAL_S else "over" for v in (statistics.median(wall), cpu)]
            row += "  " + ", ".join(marks)
        print(row)


def _write_tiny_png(path: Path, side: int = 64) -> None:
    """A grey PNG (64x64) written with the standard library (no numpy/cv2 in this process)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + bytes([128]) * side * 3 for _ in range(side))
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
    path.write_bytes(png + chunk(b"IEND", b""))


def _time_python() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"])
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
