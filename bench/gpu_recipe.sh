#!/usr/bin/env bash
# The issue-14 recipe (configs/shapes/reasoning_pointer.yaml) trained for its full length on one GPU, bf16,
# as one or more arms side by side (each arm: config overrides), each then scored on that GPU (VQA on test
# and test_heldout, caption claims on test, QG with the round-trip check on the first 300 test images).
# Everything it reports lands in $OUT (default gpu-out/):
#   log.txt          versions, the GPU, each arm's training log (an evaluation line every 600 steps)
#   arms.tar         per arm: metrics.jsonl (bench/learning_curve.py reads it), config and the scores JSONs
#   model.tar.part-* the first arm's trained model folder, in 15 MB parts (cat them | tar x): score it anywhere
# Usage, on a machine with CUDA and the suite's dependencies importable:
#   bash bench/gpu_recipe.sh [seconds] [NAME="OVERRIDES" ...]
#   bash bench/gpu_recipe.sh 580 recipe="" with_find="model.heads.vqa.pointer_film_on_find=true" seed1="train.seed=1"
# seconds: the wall budget (default 580): training stops at whatever the budget leaves after the scoring.
# Arms default to one, recipe="" (the config as committed). The CPUs this process may use (nproc) are split
# between the arms' loaders: with one worker an arm is loader-bound (~6 steps/s on the H200 machine, where three
# arms reached step ~2,500 of 3,000 in 7 minutes), so more than one arm in one 10-minute call is for comparing
# arms on validation, not for the recipe's full length. Caption CIDEr/BLEU need Java; where there is none,
# score the brought-back model elsewhere.
# A smoke test without a GPU:  DEVICE=cpu MAX_IMAGES=8 bash bench/gpu_recipe.sh 200 a="train.steps=4" b="train.steps=4"
set -uo pipefail
budget=${1:-580}
shift || true
arms=("$@")
[ ${#arms[@]} -eq 0 ] && arms=("recipe=")
names=("${arms[@]%%=*}")  # NAME of each NAME=OVERRIDES
out=${OUT:-gpu-out}
runs=${RUNS_DIR:-runs/gpu}
py=${PYTHON:-python3}
device=${DEVICE:-cuda}
few=${MAX_IMAGES:+--max-images $MAX_IMAGES}  # a smoke test elsewhere: score only the first N images
config=configs/shapes/reasoning_pointer.yaml
mkdir -p "$out" "$runs"
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
log="$out/log.txt"
bars() { tr '\r' '\n' | { grep -av '%|.*\]$\|/s\]$\|\[A$\|^\s*$' || true; }; }  # progress bars out, lines kept (none is no error)
say() { echo "== $* (t=${SECONDS}s)" | tee -a "$log"; }
workers=$(( $(nproc) / ${#arms[@]} - 1 )); [ "$workers" -lt 1 ] && workers=1

say versions
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >>"$log" 2>&1
lscpu | grep -m1 'Model name' >>"$log"
echo "CPUs this process may use: $(nproc) (loader workers per arm: $workers)" >>"$log"
$py -c "import torch, transformers, datasets, accelerate; print('python', __import__('sys').version.split()[0], '| torch', torch.__version__, '| transformers', transformers.__version__, '| datasets', datasets.__version__, '| accelerate', accelerate.__version__, '| cuda', torch.cuda.is_available())" >>"$log" 2>&1
command -v java >/dev/null && echo "java: $(command -v java)" >>"$log" || echo "java: none (caption CIDEr/BLEU are skipped there; score the model elsewhere)" >>"$log"
git rev-parse HEAD >>"$log" 2>/dev/null

say "the Shapes splits, built once before the arms share them"
$py -c "import os; from vl.data.shapes.dataset import build_dataset; build_dataset(num_proc=os.cpu_count())" 2>&1 | bars | tail -n 5 >>"$log" || { say "building the Shapes splits failed: stopping"; exit 1; }

left=$((budget - SECONDS - 130))  # leave time to score each arm and pack the results
say "${#arms[@]} arm(s) side by side, ${workers} loader workers each, at most ${left}s: ${arms[*]}"
for arm in "${arms[@]}"; do
    # shellcheck disable=SC2086  # the overrides are words on purpose
    timeout "$left" $py -m tasks.train --config "$config" train.output_dir="$runs/${arm%%=*}" data.num_workers="$workers" \
        train.eval_every=600 train.save_every=1500 ${arm#*=} >"$out/train_${arm%%=*}.raw" 2>&1 &
done
wait
for name in "${names[@]}"; do
    lines=$(bars <"$out/train_$name.raw" | grep -a '^step\|^done:\|Error\|error')
    say "arm $name: $(grep -a '^done:\|Error' <<<"$lines" | tail -n 1)"
    echo "$lines" >>"$log"
    rm -f "$out/train_$name.raw"
done

say "scoring each arm on $device"
score() {  # arm name, then the evaluate arguments
    local model="$runs/$1/model"; shift
    [ -f "$model/model.safetensors" ] || return 0
    $py -m tasks.evaluate --model "$model" --device "$device" --bf16 "$@" 2>&1 | bars | tail -n 3
}
for name in "${names[@]}"; do
    {
        score "$name" --task vqa --data shapes:test $few
        score "$name" --task vqa --data shapes:test_heldout $few
        score "$name" --task caption --data shapes:test $few
        score "$name" --task qgen --data shapes:test --max-images "${MAX_IMAGES:-300}" --num-beams 5 --num-return-sequences 5 \
            --out "$runs/$name/model/scores_qgen_roundtrip5.json"
    } >"$out/score_$name.txt" 2>&1 &
done
wait
for name in "${names[@]}"; do
    { echo "-- arm $name"; cat "$out/score_$name.txt"; } >>"$log"
    rm -f "$out/score_$name.txt"
done

say "packing"
(cd "$runs" && tar -cf - ./*/logs/metrics.jsonl ./*/config.yaml ./*/model/scores_*.json 2>/dev/null) >"$out/arms.tar"
if [ -f "$runs/${names[0]}/model/model.safetensors" ]; then
    tar -C "$runs/${names[0]}" -cf - --exclude='results_*' --exclude='questions_*' model | split -b 15M - "$out/model.tar.part-"
fi
say finished
