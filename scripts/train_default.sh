#!/usr/bin/env bash
# Stages 1-2 of the bundled default model's recipe (light-gopro), exactly as they were run.
#
#   bash scripts/train_default.sh [DATA_DIR] [RUN_DIR]
#
# DATA_DIR is ../shared/data (GOPRO frames + sharp stills); RUN_DIR defaults to
# runs/light-gopro. Two stages of the 9-block residual network (3,9,32,3,res) on a CPU: 7,000
# steps from scratch, then 7,000 fine-tuning steps in which the frames are averaged with
# gamma 2.2 or 1 (linear light or code values, as GOPRO's blur_gamma and blur). Ctrl-C saves
# a checkpoint; running the script again resumes where it stopped. Stage 3 trims the result
# to 7 blocks and fine-tunes it on a GPU:
#   python scripts/train_candidates.py DATA_DIR runs/candidates --minutes 8.5 \
#       --init RUN_DIR/light-gopro.safetensors
#   python scripts/bundle_weights.py runs/candidates/b7.safetensors light-gopro ...
set -euo pipefail
data=${1:-../shared/data}
run=${2:-runs/light-gopro}
mkdir -p "$run"
# Training data: real 240 fps GOPRO frames (CC BY 4.0) averaged 7-13 at a time, plus camera
# shake synthesised on sharp stills (Kodak: unrestricted; Urban100, Sun-Hays80, McMaster: no
# licence stated). BSDS300 and DIV2K are left out: their terms are non-commercial/academic.
# The frames are listed twice so that about 3 in 4 patches are real GOPRO motion.
data_args=(
  "frames:$data/frames" "frames:$data/frames"
  "stills:$data/sharp/kodak24crop_ffdnet" "stills:$data/sharp/urban100_selfexsr"
  "stills:$data/sharp/sunhays80_selfexsr" "stills:$data/sharp/mcmaster18_ffdnet"
)
common=(
  --batch 8 --patch 128 --schedule cosine --min-lr 1e-6 --amp bf16 --steps 7000 --workers 2
  --synth-opt 'blur=[0.005,0.06]' --noise 1 --val-every 1000 --checkpoint-every 500
  --log-every 50
)
if [ ! -f "$run/stage1.safetensors" ]; then
  deblur train "${data_args[@]}" "${common[@]}" --config 3,9,32,3,res --lr 3e-4 \
    -o "$run/stage1" --export "$run/stage1.safetensors"
fi
# Stage 2 exports its last step: the 12-crop validation moves by +-0.1 dB between
# checkpoints, about as much as separates them, and the end of the cosine schedule is the
# converged model.
exec deblur train "${data_args[@]}" "${common[@]}" --init "$run/stage1.safetensors" \
  --lr 1.5e-4 --frames-gamma 1,2.2 -o "$run/stage2" --export "$run/light-gopro.safetensors" \
  --export-last
