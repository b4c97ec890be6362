"""The training record: a CSV log (plus TensorBoard when installed) and a curve PNG.

The CSV is the source of truth and is rewritten, not appended, when a run resumes, so rows
from steps after the last checkpoint (work that was lost) do not appear twice.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..atomic import atomic_path


class CsvLog:
    """Append rows with fixed columns; on resume keep only rows up to the resumed step."""

    def __init__(self, path: Path, columns: list[str], resume_step: int | None) -> None:
        self.path = path
        self.columns = columns
        kept: list[dict[str, str]] = []
        if resume_step is not None and path.is_file():
            with open(path, newline="") as f:
                kept = [r for r in csv.DictReader(f) if int(float(r["step"])) <= resume_step]
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(kept)
        self._file = open(path, "a", newline="")  # noqa: SIM115 - kept open for the run
        self._writer = csv.DictWriter(self._file, columns, extrasaction="ignore")
        self._tb = _tensorboard(path.parent)

    def write(self, row: dict[str, Any]) -> None:
        self._writer.writerow({k: _fmt(v) for k, v in row.items()})
        self._file.flush()
        if self._tb is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                    self._tb.add_scalar(key, value, int(row["step"]))

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def _fmt(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) else value


def _tensorboard(folder: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(folder / "tensorboard"))


def read_log(path: Path) -> list[dict[str, float]]:
    rows = []
    with open(path, newline="") as f:
        for raw in csv.DictReader(f):
            rows.append({k: float(v) for k, v in raw.items() if v not in ("", None)})
    return rows


# --------------------------------------------------------------------------- the PNG


def _panel(
    canvas: np.ndarray,
    box: tuple[int, int, int, int],
    series: list[tuple[list[float], list[float], tuple[int, int, int], str]],
    title: str,
    log_y: bool,
) -> None:
    x0, y0, x1, y1 = box
    cv2.rectangle(canvas, (x0, y0), (x1, y1), (180, 180, 180), 1)
    cv2.putText(canvas, title, (x0 + 6, y0 - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    points = [(x, y) for xs, ys, _, _ in series for x, y in zip(xs, ys, strict=True)]
    if log_y:
        points = [(x, y) for x, y in points if y > 0]
    if not points:
        cv2.putText(canvas, "no data", (x0 + 10, (y0 + y1) // 2), 0, 0.5, (120, 120, 120), 1)
        return
    tf = (lambda v: math.log10(v)) if log_y else (lambda v: v)
    xmin, xmax = min(p[0] for p in points), max(p[0] for p in points)
    ymin, ymax = min(tf(p[1]) for p in points), max(tf(p[1]) for p in points)
    if xmax == xmin:
        xmax = xmin + 1
    if ymax - ymin < 1e-9:
        ymin, ymax = ymin - 0.5, ymax + 0.5

    def to_px(x: float, y: float) -> tuple[int, int]:
        px = x0 + 50 + (x - xmin) / (xmax - xmin) * (x1 - x0 - 60)
        py = y1 - 10 - (tf(y) - ymin) / (ymax - ymin) * (y1 - y0 - 20)
        return int(round(px)), int(round(py))

    for k in range(5):  # y ticks
        v = ymin + (ymax - ymin) * k / 4
        label = f"{10**v:.3g}" if log_y else f"{v:.4g}"
        py = int(y1 - 10 - (v - ymin) / (ymax - ymin) * (y1 - y0 - 20))
        cv2.line(canvas, (x0 + 50, py), (x1 - 10, py), (235, 235, 235), 1)
        cv2.putText(
            canvas, label, (x0 + 2, py + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (60, 60, 60), 1
        )
    legend_y = y0 + 16
    for xs, ys, colour, name in series:
        pts = [to_px(x, y) for x, y in zip(xs, ys, strict=True) if not log_y or y > 0]
        if len(pts) > 1:
            cv2.polylines(canvas, [np.array(pts, np.int32)], False, colour, 1, cv2.LINE_AA)
        for p in pts if len(pts) <= 40 else []:
            cv2.circle(canvas, p, 2, colour, -1)
        cv2.putText(canvas, name, (x1 - 150, legend_y), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1)
        legend_y += 14
    cv2.putText(
        canvas,
        f"step {xmin:g} .. {xmax:g}",
        (x0 + 50, y1 + 14),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.35,
        (60, 60, 60),
        1,
    )


def plot_curves(rows: list[dict[str, float]], path: Path, n_scales: int) -> Path:
    """Loss per scale (log scale) above, validation PSNR below; written atomically."""
    canvas = np.full((560, 800, 3), 255, np.uint8)
    colours = [(200, 80, 30), (40, 140, 40), (30, 60, 200), (140, 40, 140), (0, 150, 170)]

    def column(name: str) -> tuple[list[float], list[float]]:
        pairs = [(r["step"], r[name]) for r in rows if name in r and math.isfinite(r[name])]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    loss_series = [(*column("loss"), (0, 0, 0), "total")]
    for s in range(n_scales):
        loss_series.append((*column(f"loss_s{s}"), colours[s % len(colours)], f"scale {s}"))
    if any(column("adv_g")[0]):
        loss_series.append((*column("adv_g"), colours[3], "adv (G)"))
    _panel(canvas, (10, 30, 790, 290), loss_series, "training loss", log_y=True)
    val_series = [(*column("val_psnr"), colours[0], "val PSNR dB")]
    if any(column("identity_psnr")[0]):
        val_series.append((*column("identity_psnr"), (150, 150, 150), "blurry input"))
    _panel(canvas, (10, 330, 790, 530), val_series, "validation PSNR (dB)", log_y=False)
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(canvas[..., ::-1])):
            raise OSError(f"cannot encode {path}")
    return path
