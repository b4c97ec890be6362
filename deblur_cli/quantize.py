"""int8 inference on CPUs: static post-training quantization through oneDNN's quantized convs.

Where a CPU has no native bf16 (AVX2 laptops and desktops, AMD before Zen 4), fp32 is the
fallback and int8 is the speed-up: oneDNN's u8 x s8 convolutions run 2.7x faster than its
fp32 ones on plain AVX2 and ~6x with AVX-512 VNNI (one 3x3 32->32 conv at 720p, PyTorch
2.13 on a Zen 4, AVX2 emulated with ONEDNN_MAX_CPU_ISA; the whole network:
benchmarks/bench_engine.py). :class:`Int8Net` runs the network's feature path in int8:

- weights per output channel (symmetric int8), activations per tensor (u8 with a zero point),
  from ranges recorded once per model on real photos (:func:`calibrate`) and stored beside
  its weights (:func:`load_calibration`), never measured again per run;
- oneDNN's fused ops called directly, as fused.py does for fp32/bf16: conv+ReLU writing u8,
  and each ResBlock's second conv adding into the u8 residual stream in the same pass
  (conv+add), so the 32-channel activations never exist in fp32;
- in fp32: the pyramid, the coarse-to-fine up-convolutions, the global residual adds (fused
  into each scale's last conv, which reads int8 features and writes fp32), and everything
  outside the network. Only 3- and 6-channel tensors cross between fp32 and int8.

Quality (int8 vs fp32 output, and each set's PSNR against ground truth) is measured by
scripts/calibrate_int8.py, which writes the calibration; ``--precision auto`` picks int8 only
for a calibration whose check passed (>= :data:`GATE_PSNR_DB` against fp32).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import platform
import time
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .atomic import atomic_path
from .fused import FusedNet
from .model import MultiScaleDeblurNet

log = logging.getLogger(__name__)

CALIBRATION_VERSION = 1
GATE_PSNR_DB = 45.0  # int8 vs fp32 output: below this, auto does not pick int8
SIDECAR_SUFFIX = ".int8.json"
# Calibration made on first use, for a model without one: the bundled example photos.
EXAMPLES = Path(__file__).resolve().parent / "examples"


# --------------------------------------------------------------------------- the CPU


# oneDNN's ISA levels that matter here, lowest first.
ISA_LEVELS = ("none", "avx2", "avx2_vnni", "avx512", "avx512_vnni", "avx512_bf16", "amx")
# ONEDNN_MAX_CPU_ISA values -> the highest of our levels they allow (prefix match).
_ISA_CAPS = (
    ("AVX10_1_512_AMX", "amx"),
    ("AVX512_CORE_AMX", "amx"),
    ("AVX10", "avx512_bf16"),
    ("AVX512_CORE_FP16", "avx512_bf16"),
    ("AVX512_CORE_BF16", "avx512_bf16"),
    ("AVX512_CORE_VNNI", "avx512_vnni"),
    ("AVX512_CORE", "avx512"),
    ("AVX2_VNNI", "avx2_vnni"),
    ("AVX2", "avx2"),
    ("AVX", "none"),
    ("SSE41", "none"),
)


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _hardware_isa(flags: set[str]) -> str:
    if not flags:  # not Linux: ATen's own dispatch level is the best clue there is
        capability = torch.backends.cpu.get_cpu_capability().upper()
        return "avx512" if capability.startswith("AVX512") else (
            "avx2" if capability == "AVX2" else "none"
        )  # fmt: skip
    if {"amx_int8", "amx_bf16"} & flags:
        return "amx"
    if "avx512_bf16" in flags:
        return "avx512_bf16"
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    if {"avx512bw", "avx512vl", "avx512dq"} <= flags:
        return "avx512"
    if "avx_vnni" in flags:
        return "avx2_vnni"
    return "avx2" if "avx2" in flags else "none"


def cpu_isa(flags: set[str] | None = None, env: dict[str, str] | None = None) -> str:
    """The vector ISA oneDNN uses on this CPU: one of :data:`ISA_LEVELS`.

    ``ONEDNN_MAX_CPU_ISA`` (or ``DNNL_MAX_CPU_ISA``) caps it, as it caps oneDNN itself, so a
    run emulating an AVX2-only CPU (``ONEDNN_MAX_CPU_ISA=AVX2``) decides as that CPU would.
    """
    if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86") and flags is None:
        return "none"
    isa = _hardware_isa(_cpu_flags() if flags is None else flags)
    env = os.environ if env is None else env
    cap = (env.get("ONEDNN_MAX_CPU_ISA") or env.get("DNNL_MAX_CPU_ISA") or "").strip().upper()
    for prefix, level in _ISA_CAPS:
        if cap.startswith(prefix):
            if ISA_LEVELS.index(level) < ISA_LEVELS.index(isa):
                isa = level
            break
    return isa


def cpu_kind(isa: str | None = None) -> str:
    """Words for tables and summaries, e.g. ``AVX2, no VNNI, no native bf16``."""
    isa = isa or cpu_isa()
    return {
        "none": "no AVX2",
        "avx2": "AVX2, no VNNI, no native bf16",
        "avx2_vnni": "AVX2 + AVX-VNNI, no native bf16",
        "avx512": "AVX-512, no VNNI, no native bf16",
        "avx512_vnni": "AVX-512 VNNI, no native bf16",
        "avx512_bf16": "AVX-512 VNNI + BF16, no AMX",
        "amx": "AMX (native bf16 and int8 matrix units)",
    }[isa]


def int8_usable(device: torch.device | None = None) -> bool:
    """Whether this PyTorch has oneDNN's quantized convolutions and the CPU can run them
    fast (x86 with AVX2 at least)."""
    if device is not None and device.type != "cpu":
        return False
    if not torch.backends.mkldnn.is_available() or cpu_isa() == "none":
        return False
    ops = getattr(torch.ops, "onednn", None)
    return all(hasattr(ops, name) for name in ("qconv_prepack", "qconv2d_pointwise"))


# --------------------------------------------------------------------------- calibration


def _points(config: Any) -> list[str]:
    """Names of the quantized activations: per scale its input, head output, and per
    ResBlock the ReLU output and the block output (the residual stream)."""
    names = []
    for s in range(config.n_scales):
        names += [f"{s}.in", f"{s}.head"]
        for k in range(config.n_resblocks):
            names += [f"{s}.{k}.relu", f"{s}.{k}.out"]
    return names


def weights_digest(net: MultiScaleDeblurNet) -> str:
    """sha256 of the network's tensors (names, shapes, fp32 values): a calibration belongs
    to these numbers, whatever file or metadata they came in."""
    digest = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        digest.update(name.encode())
        value = tensor.detach().to("cpu", torch.float32).contiguous()
        digest.update(str(tuple(value.shape)).encode())
        digest.update(value.numpy().tobytes())
    return digest.hexdigest()


@dataclass
class Calibration:
    """Activation ranges of one model, and how well int8 matched fp32 when they were made."""

    ranges: dict[str, list[float]]  # point -> [low, high]
    digest: str  # weights_digest of the model
    images: list[str] = field(default_factory=list)
    check: dict[str, Any] = field(default_factory=dict)  # {"psnr_db": ..., ...}
    tail: float = 0.0  # share of extreme values left out per image (0: min/max)
    version: int = CALIBRATION_VERSION

    @property
    def passes(self) -> bool:
        """The stored check says int8 output stays within :data:`GATE_PSNR_DB` of fp32."""
        return float(self.check.get("psnr_db", 0.0)) >= GATE_PSNR_DB

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        data = json.loads(text)
        if data.get("version") != CALIBRATION_VERSION:
            raise ValueError(f"calibration version {data.get('version')} is not supported")
        return cls(
            ranges={k: [float(a), float(b)] for k, (a, b) in data["ranges"].items()},
            digest=str(data["digest"]),
            images=list(data.get("images", [])),
            check=dict(data.get("check", {})),
            tail=float(data.get("tail", 0.0)),
        )

    def save(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            Path(tmp).write_text(self.to_json())
        return path


# Each image's range of an activation may leave out this share of its values at either
# end (a few outliers coarsen every other value's step); the stored range is the widest
# over the calibration photos. Measured on the 6 held-out photos of calibrate_int8.py:
# 1e-4 raised the mean int8-vs-fp32 PSNR (51.1 -> 52.0 dB) but lowered the worst photo's
# (48.4 -> 46.1 dB: clipped highlights), so the default is min/max (0).
TAIL = 0.0
SAMPLE = 1 << 20


def _extremes(tensor: torch.Tensor, tail: float) -> tuple[float, float]:
    if tail <= 0:
        lo, hi = torch.aminmax(tensor)
        return float(lo), float(hi)
    # NHWC order (a view for channels_last); an odd step not divisible by 3 visits every
    # channel of 3, 6 or 2^k.
    values = tensor.float().permute(0, 2, 3, 1).reshape(-1)
    step = max(1, values.numel() // SAMPLE) | 1
    step += 2 if step % 3 == 0 else 0
    sample = values[::step]
    k = max(1, int(sample.numel() * tail))
    return float(sample.topk(k, largest=False).values[-1]), float(sample.topk(k).values[-1])


def _observers(net: MultiScaleDeblurNet, ranges: dict[str, list[float]], tail: float) -> list[Any]:
    """Forward hooks on the eager network that widen ``ranges`` with what passes."""

    def widen(name: str, tensor: torch.Tensor) -> None:
        lo, hi = _extremes(tensor.detach(), tail)
        old = ranges.get(name, [math.inf, -math.inf])
        ranges[name] = [min(old[0], lo), max(old[1], hi)]

    handles = []
    for s, scale in enumerate(net.body_models):
        layers = list(scale.body)

        def head_hook(_m, inputs, output, s=s):
            widen(f"{s}.in", inputs[0])
            widen(f"{s}.head", output)

        handles.append(layers[0].register_forward_hook(head_hook))
        for k, block in enumerate(layers[1:-1]):
            hook = lambda _m, _i, out, n=f"{s}.{k}.relu": widen(n, out)  # noqa: E731
            handles.append(block.body[1].register_forward_hook(hook))
            hook = lambda _m, _i, out, n=f"{s}.{k}.out": widen(n, out)  # noqa: E731
            handles.append(block.register_forward_hook(hook))
    return handles


def observe(
    net: MultiScaleDeblurNet, images: Iterable[np.ndarray], tail: float = TAIL
) -> dict[str, list[float]]:
    """Activation ranges of the fp32 network over ``images`` (HxWx3 uint8, any size),
    each image's ``tail`` share of extreme values left out (0: min/max)."""
    from .pyramid import gaussian_pyramid, pad_to_multiple

    net = net.eval()
    ranges: dict[str, list[float]] = {}
    handles = _observers(net, ranges, tail)
    try:
        with torch.inference_mode():
            for image in images:
                x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
                param = net.body_models[0].body[0].weight
                x = x.to(param.device)
                padded, _ = pad_to_multiple(x, net.config.size_multiple)
                net.forward_pyramid(gaussian_pyramid(padded, net.config.n_scales))
    finally:
        for handle in handles:
            handle.remove()
    missing = set(_points(net.config)) - set(ranges)
    if missing:
        raise RuntimeError(f"calibration saw no values at {sorted(missing)[:3]}")
    return ranges


def calibrate(
    net: MultiScaleDeblurNet,
    images: Iterable[np.ndarray],
    names: list[str] | None = None,
    check: list[np.ndarray] | None = None,
    tail: float = TAIL,
) -> Calibration:
    """Record the activation ranges over ``images``; with ``check`` photos, also measure
    int8 against fp32 on them (the figure ``--precision auto`` trusts)."""
    fp32 = _fp32_copy(net)
    ranges = observe(fp32, images, tail)
    calibration = Calibration(ranges, weights_digest(fp32), list(names or []), tail=tail)
    if check:
        calibration.check = compare_to_fp32(fp32, calibration, check)
    return calibration


def _fp32_copy(net: MultiScaleDeblurNet) -> MultiScaleDeblurNet:
    import copy

    return copy.deepcopy(net).to("cpu", torch.float32).eval().requires_grad_(False)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * math.log10(255.0**2 / mse)


def compare_to_fp32(
    net: MultiScaleDeblurNet,
    calibration: Calibration,
    photos: list[np.ndarray],
    levels: int | None = None,
) -> dict[str, Any]:
    """PSNR of int8 against fp32 output (8-bit, whole images): the worst and the mean.
    ``levels`` forces the weight width (:func:`weight_levels`; default: this CPU's)."""
    from .engine import prepare

    cpu = torch.device("cpu")
    reference = prepare(_fp32_copy(net), cpu, torch.float32, tile=0)
    quantized = prepare(_fp32_copy(net), cpu, torch.float32, tile=0, int8=calibration)
    if levels is not None:
        quantized.runner = Int8Net(quantized.net, calibration, levels)
    values = [psnr(quantized(p), reference(p)) for p in photos]
    return {
        "psnr_db": round(min(values), 2),
        "mean_psnr_db": round(float(np.mean(values)), 2),
        "images": len(values),
        "isa": cpu_isa(),
    }


# --------------------------------------------------------------------------- storage


def sidecar_path(weights_path: str | os.PathLike) -> Path:
    """``weights/light-gopro.safetensors`` -> ``weights/light-gopro.int8.json``."""
    path = Path(weights_path)
    return path.with_name(path.name.split(".")[0] + SIDECAR_SUFFIX)


def cache_path(digest: str) -> Path:
    """Where a calibration made on first use is kept: ``$XDG_CACHE_HOME/deblur/int8/``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "deblur" / "int8" / f"{digest[:32]}.json"


def _read(path: Path, digest: str) -> Calibration | None:
    try:
        calibration = Calibration.from_json(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as err:
        log.warning("ignoring int8 calibration %s (%s)", path, err)
        return None
    if calibration.digest != digest:
        log.info("int8 calibration %s belongs to other weights; not used", path)
        return None
    return calibration


def load_calibration(
    net: MultiScaleDeblurNet, weights_path: str | os.PathLike | None = None
) -> Calibration | None:
    """The stored calibration of these weights: the sidecar beside their file, else one
    made earlier on this machine (cache); None if there is neither."""
    digest = weights_digest(net)
    places = [sidecar_path(weights_path)] if weights_path else []
    for path in [*places, cache_path(digest)]:
        calibration = _read(path, digest)
        if calibration is not None:
            return calibration
    return None


def example_photos() -> list[np.ndarray]:
    """The bundled example photos (one blurry, one sharp), as RGB uint8."""
    import cv2

    photos = []
    for name in ("blurry.png", "sharp.png"):
        image = cv2.imread(str(EXAMPLES / name), cv2.IMREAD_COLOR)
        if image is not None:
            photos.append(np.ascontiguousarray(image[..., ::-1]))
    return photos


def ensure_calibration(
    net: MultiScaleDeblurNet, weights_path: str | os.PathLike | None = None
) -> Calibration:
    """:func:`load_calibration`, or calibrate now on the example photos (once: the result is
    cached per weights), saying so."""
    found = load_calibration(net, weights_path)
    if found is not None:
        return found
    photos = example_photos()
    log.warning(
        "int8: this model has no calibration yet; calibrating once on the bundled example "
        "photos (a few seconds; for a better one run scripts/calibrate_int8.py)"
    )
    start = time.perf_counter()
    calibration = calibrate(net, photos, ["examples/blurry.png", "examples/sharp.png"], photos)
    try:
        path = calibration.save(cache_path(calibration.digest))
        log.warning(
            "int8: calibrated in %.0f s (int8 vs fp32 %.1f dB), saved to %s",
            time.perf_counter() - start,
            calibration.check["psnr_db"],
            path,
        )
    except OSError as err:
        log.warning("int8: calibration not saved (%s)", err)
    return calibration


# --------------------------------------------------------------------------- the int8 runner


def _qparams(low: float, high: float) -> tuple[float, int]:
    """u8 scale and zero point that hold [low, high] (always including 0) without clipping."""
    low, high = min(low, 0.0), max(high, 0.0)
    scale = max((high - low) / 255.0, 1e-8)
    return scale, int(min(255, max(0, round(-low / scale))))


def quantize_u8(x: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    """fp32 -> u8 with round-to-nearest, keeping the memory format. ``quantize_per_tensor``
    is one vectorised pass (3 ms for 6 channels at 720p); the plain-torch form takes four."""
    try:
        with warnings.catch_warnings():  # quantized dtypes are deprecated; the pass is not
            warnings.simplefilter("ignore")
            return torch.quantize_per_tensor(x, scale, zero_point, torch.quint8).int_repr()
    except (AttributeError, RuntimeError):  # pragma: no cover - a future PyTorch
        return x.div(scale).round_().add_(zero_point).clamp_(0, 255).to(torch.uint8)


def weight_levels(isa: str | None = None) -> int:
    """127 (8-bit weights), or 63 where the CPU has no VNNI: there oneDNN multiplies u8 by
    s8 with ``vpmaddubsw``, whose int16 pair sums saturate past 255 x 127 x 2, which cost
    20 dB on real photos (29-31 dB against fp32 instead of 49-52). 7-bit weights cannot
    overflow and lose almost nothing (48.7-51.8 dB), as fbgemm's ``reduce_range`` does for
    its activations."""
    return 63 if (isa or cpu_isa()) in ("avx2", "avx512") else 127


class _QConv:
    """One convolution with per-channel int8 weights, re-ordered once for oneDNN."""

    def __init__(self, conv: nn.Conv2d, x_q: tuple[float, int], levels: int = 127) -> None:
        weight = conv.weight.detach().to(torch.float32)
        scale = weight.abs().amax(dim=(1, 2, 3)).clamp_min(1e-12) / levels
        qweight = (weight / scale[:, None, None, None]).round_().clamp_(-levels, levels)
        self.padding = [conv.padding[0], conv.padding[1]]
        self.x_q = x_q
        self.w_scale = scale
        self.w_zero = torch.zeros(scale.numel(), dtype=torch.int64)
        self.bias = conv.bias.detach().to(torch.float32)
        self.weight = torch.ops.onednn.qconv_prepack(
            qweight.to(torch.int8), scale, x_q[0], x_q[1], [1, 1], self.padding, [1, 1], 1,
            None,
        )  # fmt: skip

    def __call__(
        self, qx: torch.Tensor, out_q: tuple[float, int] | None, relu: bool = False
    ) -> torch.Tensor:
        """u8 in; u8 out with ``out_q`` (scale, zero point), or fp32 where it is None."""
        scale, zero = out_q or (1.0, 0)
        return torch.ops.onednn.qconv2d_pointwise(
            qx, self.x_q[0], self.x_q[1], self.weight, self.w_scale, self.w_zero, self.bias,
            [1, 1], self.padding, [1, 1], 1, scale, zero,
            torch.float32 if out_q is None else torch.uint8, "relu" if relu else "none", [], "",
        )  # fmt: skip

    def add_into(
        self,
        qx: torch.Tensor,
        accum: torch.Tensor,
        accum_q: tuple[float, int] | None,
        out_q: tuple[float, int] | None,
    ) -> torch.Tensor:
        """``conv(qx) + accum`` in one pass: u8 accum and output with their (scale, zero
        point), or fp32 accum and output where those are None. ``accum`` may be reused."""
        a_scale, a_zero = accum_q or (1.0, 0)
        scale, zero = out_q or (1.0, 0)
        return torch.ops.onednn.qconv2d_pointwise.binary(
            qx, self.x_q[0], self.x_q[1], self.weight, self.w_scale, self.w_zero, accum,
            self.bias, [1, 1], self.padding, [1, 1], 1, scale, zero,
            torch.float32 if out_q is None else torch.uint8, a_scale, a_zero, "sum", 1.0,
            "none", [], "",
        )  # fmt: skip


class _Int8Scale:
    """One scale in int8: quantize its 3/6-channel input, head, ResBlocks on the u8 stream,
    and the tail conv reading u8 and writing fp32 (with the residual skip added)."""

    def __init__(
        self, index: int, scale: nn.Module, ranges: dict[str, list[float]], levels: int
    ) -> None:
        layers = list(scale.body)
        q = {name: _qparams(*ranges[name]) for name in ranges if name.startswith(f"{index}.")}
        self.in_q = q[f"{index}.in"]
        self.head = _QConv(layers[0], self.in_q, levels)
        self.head_q = q[f"{index}.head"]
        self.blocks = []
        stream_q = self.head_q
        for k, block in enumerate(layers[1:-1]):
            relu_q, out_q = q[f"{index}.{k}.relu"], q[f"{index}.{k}.out"]
            first = _QConv(block.body[0], stream_q, levels)
            second = _QConv(block.body[2], relu_q, levels)
            self.blocks.append((first, second, relu_q, stream_q, out_q))
            stream_q = out_q
        self.tail = _QConv(layers[-1], stream_q, levels)

    def run(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        h = self.head(quantize_u8(x, *self.in_q), self.head_q)
        for first, second, relu_q, stream_q, out_q in self.blocks:
            h = second.add_into(first(h, relu_q, relu=True), h, stream_q, out_q)
        if skip is None:
            return self.tail(h, None)
        return self.tail.add_into(h, skip.clone(), None, None)


class Int8Net(FusedNet):
    """:class:`~deblur_cli.fused.FusedNet` with int8 scales (same call signature).

    Build it on an fp32 CPU network; the up-convolutions and the pyramid stay fp32.
    """

    def __init__(
        self, net: MultiScaleDeblurNet, calibration: Calibration, levels: int | None = None
    ) -> None:
        ranges = calibration.ranges
        levels = levels or weight_levels()
        super().__init__(net, onednn=True, make_scale=lambda s, m: _Int8Scale(s, m, ranges, levels))
        self.calibration = calibration

    @property
    def kind(self) -> str:
        return "oneDNN int8"
