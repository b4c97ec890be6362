"""Inference engine: device and precision choice, tile plan, blending, OOM fallback, batching.

One place decides each of these; ``deblur image``, ``deblur batch`` and ``deblur video`` all
call :func:`load_model` and :func:`deblur_array`.

Tiling. The network's receptive field is wide (about ±570 px for the paper model), so tiles
cannot reproduce the whole-image result exactly. Tiles overlap; inside each overlap the two
results are cross-faded with a raised-cosine ramp that gives zero weight to the strip next to
each tile's own border (where its missing context hurts most). Tiles that touch the image
border sit flush with it, so they see the same border as whole-image inference does.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .errors import DeblurError, InputError, ResourceError
from .fused import compile_net, fuse
from .model import ModelConfig, MultiScaleDeblurNet, build_model
from .runtime import tune_allocator
from .weights import WeightFile, load_weight_file

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
DEFAULT_OVERLAP = 128
CPU_TILE_BUDGET_BYTES = int(os.environ.get("DEBLUR_CPU_TILE_BUDGET_MB", "1024")) * 2**20
MIN_TILE = 64
# Bytes of activation memory per input pixel per feature channel per byte of dtype, measured
# on CPU with channels_last (benchmarks/bench_engine.py): the finest scale dominates.
ACTIVATION_FACTOR = 6
log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- device, precision


def choose_device(device: str = "auto") -> torch.device:
    """``auto`` = cuda > mps > cpu; an explicit device that is absent is an error."""
    name = (device or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ResourceError(
            f"unknown device {device!r} (use auto, cpu, cuda, cuda:N or mps)"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ResourceError("CUDA was requested but no CUDA GPU is available")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ResourceError(f"{name} does not exist ({torch.cuda.device_count()} GPU(s) found)")
    if dev.type == "mps" and not (torch.backends.mps.is_available()):
        raise ResourceError("MPS was requested but is not available")
    return dev


def cpu_supports_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def choose_precision(device: torch.device, precision: str = "auto") -> torch.dtype:
    """The network's dtype. ``auto``: fp16 on CUDA, bf16 on CPUs with native bf16, else
    fp32. Never fp16 on CPU: PyTorch's CPU fp16 convolutions run ~1000x slower
    (performance.md). ``int8`` keeps an fp32 network (the int8 runner is built from it, and
    eager fp32 is its fallback); :func:`precision_choice` says whether ``auto`` picks int8."""
    name = (precision or "auto").lower()
    if name not in PRECISIONS:
        raise DeblurError(f"unknown precision {precision!r} (use {', '.join(PRECISIONS)})")
    if name == "auto":
        if device.type == "cuda":
            return torch.float16
        if device.type == "cpu" and cpu_supports_bf16():
            return torch.bfloat16
        return torch.float32
    if name == "fp16" and device.type == "cpu":
        raise DeblurError("fp16 on CPU is ~1000x slower than fp32; use --precision bf16 or fp32")
    if name == "int8":
        from .quantize import int8_usable

        if device.type != "cpu":
            raise DeblurError(f"int8 runs on CPUs only, not {device.type}; use auto or fp16")
        if not int8_usable(device):
            raise DeblurError(
                "int8 needs oneDNN's quantized convolutions on an x86 CPU with AVX2 "
                "(not found here); use --precision fp32 or auto"
            )
        return torch.float32
    return DTYPES[name]


def precision_choice(device: torch.device, precision: str = "auto") -> tuple[str, str]:
    """``(name, why)``: the precision a run uses and, for ``auto``, the reason (printed in
    the run's summary). On a CPU, ``auto`` is bf16 where it is native, else int8 where the
    CPU has AVX2 and oneDNN's int8 convolutions (and the model a stored int8 calibration
    that passed its check: :func:`load_model` looks), else fp32."""
    from .quantize import cpu_isa, cpu_kind, int8_usable

    name = (precision or "auto").lower()
    dtype = choose_precision(device, name)
    if name != "auto":
        return name, ""
    if device.type != "cpu":
        return DTYPE_NAMES[dtype], f"auto on {device.type}"
    why = f"auto on {cpu_kind(cpu_isa())}"
    if dtype == torch.bfloat16:
        return "bf16", why
    return ("int8" if int8_usable(device) else "fp32"), why


# --------------------------------------------------------------------------- the loaded model


@dataclass
class Deblurrer:
    """A network on a device at a precision, plus how to tile: what ``load_model`` returns."""

    net: MultiScaleDeblurNet
    device: torch.device
    dtype: torch.dtype
    weights: WeightFile | None = None
    tile: int | None = None  # None: automatic; 0: whole image
    overlap: int = DEFAULT_OVERLAP
    tiles_per_batch: int | None = None  # None: automatic
    frames_per_batch: int | None = None  # deblur_frames; None: automatic (1 on the CPU)
    stats: dict[str, Any] = field(default_factory=dict)
    # What runs the forward pass: the fused twin of ``net`` (fused.py), its int8 twin
    # (quantize.py), or None for eager.
    runner: torch.nn.Module | None = None
    # For the run's summary: why this precision (``auto on <CPU kind>``); empty when asked for.
    precision_reason: str = ""

    @property
    def backend(self) -> str:
        """``oneDNN fused``, ``in-place`` or ``eager``: for logs and benchmarks."""
        return getattr(self.runner, "kind", "eager")

    @property
    def config(self) -> ModelConfig:
        return self.net.config

    @property
    def precision(self) -> str:
        """``int8`` while the int8 runner runs (eager fp32 is its fallback), else the dtype."""
        if getattr(self.runner, "kind", "") == "oneDNN int8":
            return "int8"
        return DTYPE_NAMES[self.dtype]

    @property
    def precision_summary(self) -> str:
        """``int8 (auto on AVX2, no VNNI, no native bf16)``: the precision and why."""
        if not self.precision_reason:
            return self.precision
        return f"{self.precision} ({self.precision_reason})"

    def __call__(self, image: np.ndarray, **kwargs: Any) -> np.ndarray:
        return deblur_array(self, image, **kwargs)


def load_model(
    weights: str | os.PathLike | WeightFile | None = None,
    device: str = "auto",
    precision: str = "auto",
    *,
    tile: int | None = None,
    overlap: int | None = None,
    fused: bool | None = None,
    compile: bool | None = None,
) -> Deblurrer:
    """Resolve weights (path, hf://, registry name, or the bundled default) and prepare them.

    ``fused`` (default: on unless ``DEBLUR_FUSED=0``) runs the network through the fused
    inference path of fused.py; it falls back to eager PyTorch by itself if that fails.
    ``compile`` (default: off unless ``DEBLUR_COMPILE=1``) adds torch.compile on top, for
    long runs of same-size frames (it compiles per input size)."""
    tune_allocator()
    weight_file = weights if isinstance(weights, WeightFile) else load_weight_file(weights)
    dev = choose_device(device)
    name, reason = precision_choice(dev, precision)
    net = build_model(weight_file.config)
    net.load_state_dict(weight_file.state_dict)
    int8 = None
    if name == "int8":
        int8, name, reason = _int8_calibration(net, weight_file, reason)
    model = prepare(
        net, dev, choose_precision(dev, name), weights=weight_file, tile=tile, overlap=overlap,
        fused=fused, compile=compile, int8=int8,
    )  # fmt: skip
    model.precision_reason = reason
    return model


def _int8_calibration(
    net: MultiScaleDeblurNet, weight_file: WeightFile, reason: str
) -> tuple[Any, str, str]:
    """(calibration, precision, reason) for a run that wants int8. ``--precision int8`` takes
    the stored calibration or makes one now (once, saying so); ``auto`` takes int8 only with
    a stored calibration whose check passed, else fp32 and why."""
    from .quantize import GATE_PSNR_DB, ensure_calibration, load_calibration

    if not reason:
        return ensure_calibration(net, weight_file.path), "int8", reason
    calibration = load_calibration(net, weight_file.path)
    if calibration is None:
        why = "no int8 calibration for this model yet (--precision int8 makes one)"
        return None, "fp32", f"{reason}: {why}"
    if not calibration.passes:
        db = calibration.check.get("psnr_db")
        why = f"int8 of this model is {db} dB from fp32 (< {GATE_PSNR_DB:g})"
        return None, "fp32", f"{reason}: {why}"
    return calibration, "int8", reason


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    return value not in ("0", "off", "false", "no")


def fused_default() -> bool:
    """``DEBLUR_FUSED=0`` (or off/false/no) turns the fused path off, e.g. to compare."""
    return _env_flag("DEBLUR_FUSED", True)


def compile_default() -> bool:
    """``DEBLUR_COMPILE=1`` turns torch.compile on (off by default: it compiles per size)."""
    return _env_flag("DEBLUR_COMPILE", False)


def prepare(
    net: MultiScaleDeblurNet,
    device: torch.device,
    dtype: torch.dtype,
    *,
    weights: WeightFile | None = None,
    tile: int | None = None,
    overlap: int | None = None,
    fused: bool | None = None,
    compile: bool | None = None,
    int8: Any = None,
) -> Deblurrer:
    """Wrap an in-memory network (e.g. from training) for inference.

    The fused path snapshots oneDNN copies of the weights: prepare again after changing them.
    ``int8`` (a :class:`~deblur_cli.quantize.Calibration`, or True to load/make one) runs the
    network in int8 on the CPU (quantize.py) with ``dtype`` float32; eager fp32 is the
    fallback if oneDNN's int8 ops fail.
    """
    net = net.eval().requires_grad_(False).to(device=device, dtype=dtype)
    if device.type != "mps":
        net = net.to(memory_format=torch.channels_last)
    if dtype != torch.float32:
        # The final conv of the finest scale stays in fp32: bf16 cannot hold 0..255 outputs to
        # better than ±0.5 grey levels, and this conv costs ~1% of the network.
        net.body_models[0].body[-1].float()
    if tile is not None and tile < 0:
        raise DeblurError("--tile must be 0 (whole image) or a positive size")
    m = net.config.size_multiple
    if overlap is None:
        overlap = DEFAULT_OVERLAP
    if overlap < 0:
        raise DeblurError("--overlap must be >= 0")
    overlap = int(math.ceil(overlap / m) * m)
    model = Deblurrer(net, device, dtype, weights, tile, overlap)
    if int8 is not None and int8 is not False:
        model.runner = _int8_runner(net, device, dtype, weights, int8)
        return model
    if fused is None:
        fused = fused_default()
    if fused:
        try:
            model.runner = fuse(net)
        except Exception as err:  # noqa: BLE001 - any failure here only costs speed
            log.info("fused inference path unavailable (%s); running eager", err)
    if compile_default() if compile is None else compile:
        model.runner = compile_net(net, fallback=model.runner or net)
    return model


def _int8_runner(
    net: MultiScaleDeblurNet,
    device: torch.device,
    dtype: torch.dtype,
    weights: WeightFile | None,
    int8: Any,
) -> torch.nn.Module:
    from .quantize import Calibration, Int8Net, ensure_calibration

    if dtype != choose_precision(device, "int8"):  # raises where int8 cannot run
        raise DeblurError("int8 is built from an fp32 network")
    calibration = int8 if isinstance(int8, Calibration) else None
    if calibration is None:
        calibration = ensure_calibration(net, weights.path if weights else None)
    return Int8Net(net, calibration)


# --------------------------------------------------------------------------- tile plan


@dataclass(frozen=True)
class TilePlan:
    """Tile starts per axis and one tile size (all tiles share it, so they batch)."""

    height: int
    width: int
    tile_h: int
    tile_w: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.ys) * len(self.xs)

    def boxes(self) -> Iterator[tuple[int, int]]:
        for y in self.ys:
            for x in self.xs:
                yield y, x


def _axis_starts(
    length: int, tile: int, overlap: int, multiple: int = 1
) -> tuple[int, tuple[int, ...]]:
    """Evenly spread starts, each a multiple of ``multiple`` except the last (flush with the
    border), so a tile's Gaussian pyramid samples the same pixels as the whole image's does;
    any two neighbours share at least ``overlap`` px."""
    if length <= tile:
        return length, (0,)
    stride = max((tile - overlap) // multiple * multiple, multiple)
    last = length - tile
    n = math.ceil(last / stride) + 1
    spacing = last / (n - 1)
    # ceil keeps every gap <= stride (ceil(spacing) <= stride as stride is a multiple).
    inner = {min(math.ceil(i * spacing / multiple) * multiple, last) for i in range(n - 1)}
    return tile, tuple(sorted(inner | {last}))


def fit_tile(length: int, max_tile: int, overlap: int, multiple: int) -> int:
    """The smallest multiple-of-``multiple`` tile that covers ``length`` in as few tiles as
    ``max_tile`` allows: a 720p frame with max 512 becomes 3x2 tiles of ~512x400, not more."""
    if length <= max_tile:
        return length
    n = math.ceil((length - overlap) / (max_tile - overlap))
    tile = math.ceil((length + (n - 1) * overlap) / n)
    return min(max_tile, int(math.ceil(tile / multiple) * multiple))


def plan_tiles(height: int, width: int, tile: int, overlap: int, multiple: int) -> TilePlan:
    """Place tiles of side ``tile`` (0 = whole image) with at least ``overlap`` px shared."""
    if tile == 0 or (height <= tile and width <= tile):
        return TilePlan(height, width, height, width, (0,), (0,))
    tile = max(int(tile // multiple * multiple), multiple)
    overlap = min(overlap, tile // 2)
    overlap = overlap // multiple * multiple
    tile_h, ys = _axis_starts(height, fit_tile(height, tile, overlap, multiple), overlap, multiple)
    tile_w, xs = _axis_starts(width, fit_tile(width, tile, overlap, multiple), overlap, multiple)
    return TilePlan(height, width, tile_h, tile_w, ys, xs)


def bytes_per_pixel(config: ModelConfig, dtype: torch.dtype) -> int:
    elem = torch.finfo(dtype).bits // 8
    return ACTIVATION_FACTOR * config.n_feats * elem + 64


def auto_tile(model: Deblurrer) -> int:
    """Largest square tile whose activations fit the memory budget of the device."""
    if model.device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(model.device)
        budget = int(free * 0.6)
    else:
        budget = CPU_TILE_BUDGET_BYTES
    side = int(math.sqrt(budget / bytes_per_pixel(model.config, model.dtype)))
    m = model.config.size_multiple
    return max(MIN_TILE, side // m * m)


def _ramp(length: int) -> np.ndarray:
    """0 for the outer quarter, raised cosine through the middle half, 1 for the inner quarter."""
    x = np.arange(length, dtype=np.float64) + 0.5
    lo, hi = length * 0.25, length * 0.75
    t = np.clip((x - lo) / max(hi - lo, 1e-9), 0.0, 1.0)
    return (0.5 - 0.5 * np.cos(np.pi * t)).astype(np.float32)


def _axis_weight(starts: tuple[int, ...], index: int, size: int) -> np.ndarray:
    """Blend weights along one axis for tile ``index``: ramps only where a neighbour overlaps."""
    w = np.ones(size, dtype=np.float32)
    start = starts[index]
    if index > 0:
        ov = starts[index - 1] + size - start
        if ov > 0:
            w[:ov] *= _ramp(ov)
    if index + 1 < len(starts):
        ov = start + size - starts[index + 1]
        if ov > 0:
            w[size - ov :] *= _ramp(ov)[::-1]
    return w


# --------------------------------------------------------------------------- running


def _is_oom(err: BaseException) -> bool:
    if isinstance(err, torch.cuda.OutOfMemoryError):
        return True
    text = str(err).lower()
    return isinstance(err, (RuntimeError, MemoryError)) and (
        "out of memory" in text or "can't allocate memory" in text or isinstance(err, MemoryError)
    )


def _forward(model: Deblurrer, batch: torch.Tensor, to_255: float = 1.0) -> torch.Tensor:
    """N×H×W×3 pixels of any dtype (``× to_255`` gives 0..255) → N×3×H×W float32 on the device.

    Pixels travel in their own dtype (a quarter of the bytes for uint8) and become fp32 on
    the device: the network builds its pyramid in fp32, and a bf16 copy would round 16-bit
    pixels."""
    with torch.inference_mode():
        x = batch.to(model.device, non_blocking=True).permute(0, 3, 1, 2).float()
        if to_255 != 1.0:
            x = x.mul_(to_255)
        memory_format = (
            torch.contiguous_format if model.device.type == "mps" else torch.channels_last
        )
        x = x.contiguous(memory_format=memory_format)
        runner = model.runner
        if runner is None:
            return model.net(x).float()
        try:
            return runner(x).float()
        except (RuntimeError, TypeError, NotImplementedError, ValueError) as err:
            if _is_oom(err):
                raise
            # Never fail a job over a speed-up: eager PyTorch from now on, and say why.
            log.warning("fused inference failed (%s); falling back to eager PyTorch", err)
            model.runner = None
            model.stats["fused_error"] = str(err)
            return model.net(x).float()


def _scale_to_255(dtype: np.dtype) -> float:
    """The factor that maps an image dtype's range onto the network's 0..255."""
    if dtype == np.uint8:
        return 1.0
    if dtype == np.uint16:
        return 255.0 / 65535.0
    if np.issubdtype(dtype, np.floating):
        return 255.0
    raise InputError(f"unsupported pixel type {dtype}")


def _to_dtype(out: torch.Tensor, to_255: float, dtype: np.dtype) -> np.ndarray:
    """0..255 float32 (the engine's own buffer, changed in place) → the input's dtype and
    range, as a CPU array. In torch, where ``out`` lies: on the CPU it runs on every core (at
    24 MP each float32 copy is 288 MB); on a GPU only the 8-bit result crosses to the host,
    a quarter of the float's bytes, and the host does no per-pixel work."""
    with torch.inference_mode():
        if to_255 != 1.0:
            out = out.mul_(1.0 / to_255)
        if dtype == np.uint8:
            return out.round_().clamp_(0, 255).to(torch.uint8).cpu().numpy()
        if dtype == np.uint16:
            out = out.round_().clamp_(0, 65535).to(torch.int32)
            return out.cpu().numpy().astype(np.uint16)
        return out.clamp_(0.0, 1.0).cpu().numpy().astype(dtype, copy=False)


def _deblur_pixels(
    model: Deblurrer,
    pixels: np.ndarray,
    to_255: float,
    tile: int | None,
    progress: Callable[[int, int], None] | None,
) -> torch.Tensor:
    """HxWx3 pixels of any dtype → HxWx3 float32 0..255 (unclipped): on the model's device
    when the image runs in one piece (``_to_dtype`` converts it there), else on the CPU,
    where the tiles are blended."""
    height, width = pixels.shape[:2]
    m = model.config.size_multiple
    if tile is None:
        tile = model.tile
    if tile is None:
        tile = auto_tile(model)
        if height * width <= tile * tile:
            # The budget is an area: a 1280x720 frame needs less than a 1132^2 tile, so
            # splitting it because one side is longer would only add overlap work.
            tile = 0
    while True:
        plan = plan_tiles(height, width, tile, model.overlap, m)
        try:
            out = _run_plan(model, pixels, to_255, plan, progress)
            model.stats.update(tile=tile, tiles=len(plan), tile_h=plan.tile_h, tile_w=plan.tile_w)
            return out
        except (RuntimeError, MemoryError) as err:
            if not _is_oom(err):
                raise
            if model.device.type == "cuda":
                torch.cuda.empty_cache()
            current = max(plan.tile_h, plan.tile_w)
            if current <= MIN_TILE:
                raise ResourceError(
                    f"out of memory on {model.device} even with {MIN_TILE}px tiles"
                ) from None
            tile = max(MIN_TILE, current // 2 // m * m)
            model.tile = tile  # remember for the next image/frame


MAX_PER_PASS = 8  # pictures (tiles or frames) stacked into one forward pass on a GPU


def _pictures_per_pass(model: Deblurrer, height: int, width: int) -> int:
    """How many height x width pictures one forward pass takes: on CUDA as many as fit in
    60 % of free memory (at most MAX_PER_PASS); on the CPU one, whose cores a single
    picture already fills."""
    if model.device.type != "cuda":
        return 1
    free, _ = torch.cuda.mem_get_info(model.device)
    need = height * width * bytes_per_pixel(model.config, model.dtype)
    return int(max(1, min(MAX_PER_PASS, free * 0.6 // max(need, 1))))


def _tiles_per_batch(model: Deblurrer, plan: TilePlan) -> int:
    if model.tiles_per_batch:
        return model.tiles_per_batch
    return 1 if len(plan) == 1 else _pictures_per_pass(model, plan.tile_h, plan.tile_w)


def _normalised_axis_weights(starts: tuple[int, ...], size: int, length: int) -> list[torch.Tensor]:
    """Per-tile blend weights along one axis, divided by their sum at every position.

    The tiles form a grid, so the 2-D weight sum is the product of the two axes' sums:
    normalising each axis makes every pixel's weights add up to one, with no full-size
    weight image and no division pass over the result."""
    weights = [_axis_weight(starts, i, size) for i in range(len(starts))]
    total = np.zeros(length, np.float64)
    for start, w in zip(starts, weights, strict=True):
        total[start : start + size] += w
    return [
        torch.from_numpy((w / np.maximum(total[s : s + size], 1e-12)).astype(np.float32))
        for s, w in zip(starts, weights, strict=True)
    ]


def _run_plan(
    model: Deblurrer,
    pixels: np.ndarray,
    to_255: float,
    plan: TilePlan,
    progress: Callable[[int, int], None] | None,
) -> torch.Tensor:
    if len(plan) == 1:
        x = torch.from_numpy(np.ascontiguousarray(pixels))[None]
        out = _forward(model, x, to_255)[0].permute(1, 2, 0)
        if progress:
            progress(1, 1)
        return out
    # Blending runs in torch (all cores) into one float32 image; the tiles are converted
    # from the input's own dtype one at a time, so there is no full-size float input.
    acc = torch.zeros((plan.height, plan.width, 3), dtype=torch.float32)
    wy = _normalised_axis_weights(plan.ys, plan.tile_h, plan.height)
    wx = _normalised_axis_weights(plan.xs, plan.tile_w, plan.width)
    boxes = [(i, j) for i in range(len(plan.ys)) for j in range(len(plan.xs))]
    per_batch = _tiles_per_batch(model, plan)
    done = 0
    if progress:
        progress(0, len(boxes))  # lets a caller draw its bar before the first tile finishes
    for b in range(0, len(boxes), per_batch):
        group = boxes[b : b + per_batch]
        crops = [
            pixels[plan.ys[i] : plan.ys[i] + plan.tile_h, plan.xs[j] : plan.xs[j] + plan.tile_w]
            for i, j in group
        ]
        x = torch.from_numpy(np.stack(crops))
        outs = _forward(model, x, to_255).permute(0, 2, 3, 1).cpu()
        with torch.inference_mode():
            for (i, j), out in zip(group, outs, strict=True):
                w = (wy[i][:, None] * wx[j][None, :])[..., None]
                ys = slice(plan.ys[i], plan.ys[i] + plan.tile_h)
                xs = slice(plan.xs[j], plan.xs[j] + plan.tile_w)
                acc[ys, xs].addcmul_(out, w)
        done += len(group)
        if progress:
            progress(done, len(boxes))
    return acc


def deblur_array(
    model: Deblurrer,
    image: np.ndarray,
    *,
    tile: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Deblur an RGB(A) or grayscale array, returning the same shape and dtype.

    uint8 and uint16 keep their full range (16-bit is processed at float precision, not
    reduced to 8 bits); float input is taken as 0..1. A 4th channel (alpha) is passed through
    untouched; grayscale is processed as three equal channels and averaged back.
    """
    if not isinstance(image, np.ndarray) or image.ndim not in (2, 3) or image.size == 0:
        raise InputError("expected a non-empty HxW, HxWx3 or HxWx4 array")
    if image.ndim == 3 and image.shape[2] not in (1, 3, 4):
        raise InputError(f"expected 1, 3 or 4 channels, got {image.shape[2]}")
    gray = image.ndim == 2 or image.shape[2] == 1
    alpha = image[..., 3:4] if image.ndim == 3 and image.shape[2] == 4 else None
    if gray:
        plane = image.reshape(image.shape[0], image.shape[1])
        rgb_in = np.repeat(plane[..., None], 3, axis=2)
    else:
        rgb_in = image[..., :3]
    to_255 = _scale_to_255(image.dtype)
    out = _deblur_pixels(model, rgb_in, to_255, tile, progress)
    del rgb_in
    if gray:
        out = out.mean(dim=2, keepdim=image.ndim == 3)
    result = _to_dtype(out, to_255, image.dtype)
    if alpha is not None:
        result = np.concatenate([result, alpha], axis=2)
    return result


def frames_per_batch(model: Deblurrer, height: int, width: int) -> int:
    """How many frames of this size one forward pass should take (``_pictures_per_pass``:
    on a GPU a light network on one 720p frame leaves the device idle between launches).
    ``model.frames_per_batch`` overrides."""
    return model.frames_per_batch or _pictures_per_pass(model, height, width)


def _stackable(model: Deblurrer, frames: list[np.ndarray]) -> bool:
    """Same-size non-empty RGB arrays that each run whole (one tile) on this model."""
    first = frames[0]
    if not isinstance(first, np.ndarray) or first.ndim != 3 or first.shape[2] != 3:
        return False
    if first.size == 0 or any(
        not isinstance(f, np.ndarray) or f.shape != first.shape or f.dtype != first.dtype
        for f in frames
    ):
        return False
    height, width = first.shape[:2]
    if model.tile == 0:
        return True
    if model.tile is None:
        side = auto_tile(model)
        return height * width <= side * side
    return height <= model.tile and width <= model.tile


def deblur_frames(model: Deblurrer, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Deblur several pictures, in one forward pass where they allow it.

    Frames of one video share size and type: RGB frames that each run whole (no tiles) go
    through the network as one batch, same result as :func:`deblur_array` one by one. Any
    other mix, and a batch that runs out of memory, is done in halves down to one."""
    frames = list(frames)
    if len(frames) < 2 or not _stackable(model, frames):
        return [deblur_array(model, f) for f in frames]
    first = frames[0]
    to_255 = _scale_to_255(first.dtype)
    try:
        out = _forward(model, torch.from_numpy(np.stack(frames)), to_255)
    except (RuntimeError, MemoryError) as err:
        if not _is_oom(err):
            raise
        if model.device.type == "cuda":
            torch.cuda.empty_cache()
        half = len(frames) // 2
        model.frames_per_batch = max(1, half)  # remember for the next batch
        return deblur_frames(model, frames[:half]) + deblur_frames(model, frames[half:])
    model.stats.update(tile=0, tiles=1, tile_h=first.shape[0], tile_w=first.shape[1])
    return list(_to_dtype(out.permute(0, 2, 3, 1), to_255, first.dtype))
