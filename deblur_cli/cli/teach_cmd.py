"""``deblur synth teach``: a bank of teacher targets for distillation (``train/bank.py``)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from .common import PRECISIONS, console
from .synth_cmd import _progress, synth
from .train_cmd import parse_gammas, parse_synth_options, source_options


@click.command("teach")
@click.argument("data", nargs=-1, required=True)
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="BANK folder.")
@click.option(
    "--teacher",
    required=True,
    metavar="SPEC",
    help="The network whose outputs become targets: a DMPHN .safetensors, or any "
    "--weights SPEC (registry name, file, hf:// URL, converted official checkpoint).",
)
@click.option(
    "--count",
    type=click.IntRange(1),
    default=1000,
    show_default=True,
    help="Crops in the bank. Crop k depends only on --seed and k: a larger count later "
    "extends the same bank.",
)
@click.option(
    "--crop",
    type=click.IntRange(32),
    default=256,
    show_default=True,
    help="Side of each crop; training patches (--patch) are cut from it.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Which crops are drawn.")
@click.option(
    "--batch", type=click.IntRange(1), default=4, show_default=True, help="Crops per pass."
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, mps.")
@click.option(
    "--precision",
    type=click.Choice([p for p in PRECISIONS if p != "int8"]),  # int8 is for inference
    default="auto",
    show_default=True,
    help="Teacher precision: auto = fp16 on CUDA, bf16 on CPUs with native bf16, else fp32.",
)
@click.option(
    "--workers",
    type=click.IntRange(0),
    default=1,
    show_default=True,
    help="Processes drawing crops while the teacher runs (0 = in this process).",
)
@source_options
def teach(
    data: tuple[str, ...],
    output: Path,
    teacher: str,
    count: int,
    crop: int,
    seed: int,
    batch: int,
    device: str,
    precision: str,
    workers: int,
    blur_dir: str,
    frames_gamma: str,
    frames_crf: Path | None,
    frames_count: tuple[int, int],
    synth_opt: tuple[str, ...],
) -> None:
    """Restore crops of DATA with a teacher network: a bank to distil from.

    \b
    DATA takes the forms of 'deblur train' (frames:, stills:, pairs:, gopro:,
    identity:) plus blurry:DIR, real blurry photos with no ground truth.
    Writes BANK/blur/NNNNNN.png (the input crop), BANK/teacher/NNNNNN.png
    (the teacher's restoration) and, where DATA has it, BANK/sharp/NNNNNN.png.
    Train on it with 'deblur train bank:BANK' (see --teacher-share). Resumable:
    the same command skips finished crops.

    \b
    Example (DMPHN teacher, GOPRO-style blur at every window length):
      deblur synth teach frames:GOPR0477/ blurry:lai2016/ -o bank/ \\
          --teacher dmphn_1_2_4_gopro.safetensors --frames-count 3-25
    """
    from ..engine import choose_device
    from ..errors import OutputError
    from ..train.bank_builder import BankWriter, bank_settings, build_bank
    from ..train.data import open_source
    from ..train.teacher import load_teacher

    if output.exists() and not output.is_dir():
        raise OutputError(f"{output}: exists and is not a folder")
    gammas = parse_gammas(frames_gamma)
    options = parse_synth_options(synth_opt)
    crf = str(frames_crf) if frames_crf else None
    sources = [open_source(s, blur_dir, options, gammas, crf, frames_count) for s in data]
    with console.status("loading the teacher…"):
        net = load_teacher(teacher, choose_device(device), precision)
    # A bank made with other settings is refused before anything is printed or written.
    BankWriter(output, bank_settings(sources, net.provenance, crop, seed)).open()
    console.print(
        f"[dim]teacher {net.name} on {net.device} "
        f"({str(net.dtype).replace('torch.', '')}); {count} crops of {crop}px[/dim]"
    )
    for source in sources:
        console.print(f"[dim]  data: {source.describe()}[/dim]")
    made = skipped = 0
    start = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task("teach", total=count)

        def advance(_k: int, was_skipped: bool) -> None:
            nonlocal made, skipped
            skipped += was_skipped
            made += not was_skipped
            progress.advance(task)

        build_bank(
            sources,
            net,
            output,
            count,
            crop=crop,
            seed=seed,
            batch=batch,
            workers=workers,
            teacher_provenance=net.provenance,
            progress=advance,
        )
    seconds = time.perf_counter() - start
    pace = f" ({seconds / made:.2f} s per crop)" if made else ""
    console.print(
        f"{made} crops restored, {skipped} already there, in {seconds:.1f} s{pace} "
        f"→ [bold]{output}[/bold]; train with: deblur train bank:{output}",
        soft_wrap=True,
    )


synth.add_command(teach)
COMMANDS: list[click.Command] = []  # registered under 'deblur synth'
