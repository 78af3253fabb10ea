#!/usr/bin/env bash
# Measures the peak tensor memory of real TorchSharp training runs on this CPU and writes them beside the planner's
# --device cpu prediction into cpu-measured.csv. Each run is a separate process (3 AdamW steps: the optimizer state
# exists from step 2 on, so the peak includes it). Memory is not timing: a busy machine does not change the figures.
# usage: bench/ground-truth/measure-cpu.sh            (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/../.."
here=bench/ground-truth
bin=$(mktemp -d)
dotnet publish src/Afinado.Cli -c Release -o "$bin" --nologo -v q >/dev/null
work=$(mktemp -d)
out=$here/cpu-measured.csv
echo "id,scope,metric,plan_args,measured_bytes,planned_bytes,error,tolerance,note,model,method,freeze,lora_rank,batch,seq,attention,checkpointing,total_parameters,trainable_parameters" > "$out.tmp"
tail -n +2 $here/configs.csv | while IFS=, read -r id model method freeze rank batch seq attention ckpt; do
  args=(train --model "$here/models/$model.json" --data fortunes-en --tokenizer byte --batch "$batch" --seq "$seq" --max-steps 3
        --warmup 1 --eval-every 0 --eval-batches 1 --checkpoint-every 0 --method "$method" --attention "$attention" --threads 1
        --out "$work/$id" --json)
  [ -n "$freeze" ] && args+=(--freeze "$freeze")
  [ -n "$rank" ] && args+=(--lora-rank "$rank" --lora-alpha $((2 * rank)) --lora-dropout 0)
  [ "$ckpt" = true ] && args+=(--gradient-checkpointing)
  if ! dotnet "$bin/afinado.dll" "${args[@]}" 2>"$work/$id.err" > "$work/$id.json"; then
    echo "$id failed:" >&2; tail -5 "$work/$id.err" >&2; continue
  fi
  plan="--model models/$model.json --device cpu --precision fp32 --method $method --batch $batch --seq $seq --attention $attention --optimizer adamw"
  [ -n "$freeze" ] && plan+=" --freeze $freeze"
  [ -n "$rank" ] && plan+=" --lora-rank $rank --lora-alpha $((2 * rank)) --lora-dropout 0"
  [ "$ckpt" = true ] && plan+=" --checkpointing full"
  /usr/bin/python3 - "$work/$id.json" "$id" "$plan" "$model,$method,$freeze,$rank,$batch,$seq,$attention,$ckpt" >> "$out.tmp" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
p, m = s["planned_peak_bytes"], s["measured_peak_bytes"]
note = "TorchSharp 0.107 CPU run (afinado train; 3 AdamW steps; --threads 1); VmHWM growth over the pre-model baseline with mmap threshold 128 KiB"
scope = "cpu" if abs(m - p) <= 0.08 * p else "unmet"  # unmet: a measured planner gap, reported by `afinado validate`, not asserted
print(f'{sys.argv[2]},{scope},rss-growth,{sys.argv[3]},{m},{p},{(m - p) / p:+.4f},0.08,{note},{sys.argv[4]},{s["total_parameters"]},{s["trainable_parameters"]}')
PY
  tail -1 "$out.tmp"
done
mv "$out.tmp" "$out"
rm -rf "$work" "$bin"
