#!/usr/bin/env bash
# The issue-14 recipe (configs/shapes/reasoning_pointer.yaml) trained for its full length on one GPU, bf16,
# then the captioner speed comparison on that GPU. Everything it reports lands in $OUT (default gpu-out/):
#   log.txt          versions, the GPU, the training log (an evaluation line every 300 steps), the speed tables
#   metrics.jsonl    the run's logged metrics (bench/learning_curve.py reads it)
#   model.tar.part-* the trained model folder, split into 15 MB parts (cat them | tar x): evaluate it anywhere
# Usage, on a machine with CUDA and the suite's dependencies importable:   bash bench/gpu_recipe.sh [seconds]
# The optional argument is the wall budget (default 580): training stops at whatever that budget leaves.
set -uo pipefail
budget=${1:-580}
out=${OUT:-gpu-out}
run=${RUN_DIR:-runs/shapes-reasoning-pointer-gpu}
py=${PYTHON:-python3}
mkdir -p "$out"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
log="$out/log.txt"
bars() { tr '\r' '\n' | grep -av '%|.*\]$\|/s\]$\|\[A$\|^\s*$'; }  # progress bars out, lines kept
say() { echo "== $* (t=${SECONDS}s)" | tee -a "$log"; }

say versions
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >>"$log" 2>&1
lscpu | grep -m1 'Model name' >>"$log"
$py -c "import torch, transformers, datasets, accelerate; print('python', __import__('sys').version.split()[0], '| torch', torch.__version__, '| transformers', transformers.__version__, '| datasets', datasets.__version__, '| accelerate', accelerate.__version__, '| cuda', torch.cuda.is_available())" >>"$log" 2>&1
command -v java >/dev/null && echo "java: $(command -v java)" >>"$log" || echo "java: none (caption CIDEr/BLEU are skipped there; score the model elsewhere)" >>"$log"

say "smoke: 10 steps, the whole loop once (builds the Shapes cache too)"
if ! $py -m tasks.train --config configs/shapes/reasoning_pointer.yaml train.output_dir=/tmp/smoke train.steps=10 \
    train.eval_every=10 train.save_every=10 data.eval_images=16 data.num_workers=8 2>&1 | bars | tail -n 25 >>"$log"; then
    say "smoke failed: stopping"
    exit 1
fi
grep -q '^done:' "$log" || { say "smoke did not finish: stopping"; exit 1; }

left=$((budget - SECONDS - 100))  # leave time to pack the model and time the captioner
say "recipe: 3,000 steps, bf16, 8 loader workers, at most ${left}s"
timeout "$left" $py -m tasks.train --config configs/shapes/reasoning_pointer.yaml train.output_dir="$run" data.num_workers=8 2>&1 | bars >>"$log"
say "training ended (exit ${PIPESTATUS[0]})"
cp "$run/logs/metrics.jsonl" "$out/" 2>/dev/null
if [ -f "$run/model/model.safetensors" ]; then
    tar -C "$run" -cf - model | split -b 15M - "$out/model.tar.part-"
fi

left=$((budget - SECONDS - 5))
if [ "$left" -gt 30 ]; then
    say "captioner speed, ours against HF VisionEncoderDecoder, on the GPU (at most ${left}s)"
    timeout "$left" $py bench/caption_speed.py --device cuda --precision both 2>&1 | bars >>"$log"
fi
say finished
