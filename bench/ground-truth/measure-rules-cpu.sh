#!/usr/bin/env bash
# Measures the peak memory of real TorchSharp training runs under each learning rule (es with AdamW, MeZO-style es
# direct = `--rule es --optimizer sgd`, dfa, guided-es with its DFA surrogate) and writes them beside the planner's
# --device cpu --rule prediction into cpu-rules-measured.csv. Same method as measure-cpu.sh: one process per run, 3 steps
# (optimizer state exists from step 2 on), --threads 1, VmHWM growth over the pre-model baseline (mmap threshold 128 KiB).
# usage: bench/ground-truth/measure-rules-cpu.sh        (from the repository root; KEEP=DIR keeps each run's summary;
#        ONLY=PATTERN runs the matching ids into cpu-rules-measured.csv.only)
set -euo pipefail
cd "$(dirname "$0")/../.."
here=bench/ground-truth
bin=$(mktemp -d)
dotnet publish src/Afinado.Cli -c Release -o "$bin" --nologo -v q >/dev/null
work=${KEEP:-$(mktemp -d)}
mkdir -p "$work"
out=$here/cpu-rules-measured.csv
echo "id,scope,metric,plan_args,train_args,measured_bytes,planned_bytes,error,tolerance,note,model,rule,optimizer,method,lora_rank,batch,seq,attention,total_parameters,trainable_parameters" > "$out.tmp"
tail -n +2 $here/rule-configs.csv | while IFS=, read -r id model rule optimizer method rank batch seq attention; do
  [ -n "${ONLY:-}" ] && [[ "$id" != *$ONLY* ]] && continue
  train="--model models/$model.json --data fortunes-en --tokenizer byte --batch $batch --seq $seq --max-steps 3 --warmup 1 --eval-every 0 --eval-batches 1 --checkpoint-every 0 --method $method --attention $attention --threads 1 --rule $rule --optimizer $optimizer --es-pairs 4"
  [ -n "$rank" ] && train+=" --lora-rank $rank --lora-alpha $((2 * rank)) --lora-dropout 0"
  rm -rf "$work/$id"
  # shellcheck disable=SC2086
  if ! (cd $here && dotnet "$bin/afinado.dll" train $train --out "$work/$id" --json) 2>"$work/$id.err" > "$work/$id.json"; then
    echo "$id failed:" >&2; tail -5 "$work/$id.err" >&2; continue
  fi
  planrule=$rule; planopt=$optimizer
  [ "$rule" = es ] && [ "$optimizer" = sgd ] && planrule=es-direct
  plan="--model models/$model.json --device cpu --method $method --batch $batch --seq $seq --attention $attention --rule $planrule --optimizer $planopt"
  [ -n "$rank" ] && plan+=" --lora-rank $rank --lora-alpha $((2 * rank)) --lora-dropout 0"
  /usr/bin/python3 - "$work/$id.json" "$id" "$plan" "$train" "$model,$rule,$optimizer,$method,$rank,$batch,$seq,$attention" >> "$out.tmp" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
p, m = s["planned_peak_bytes"], s["measured_peak_bytes"]
note = "TorchSharp 0.107 CPU run (afinado train from bench/ground-truth; 3 steps; --es-pairs 4; --threads 1); VmHWM growth over the pre-model baseline with mmap threshold 128 KiB"
scope = "cpu" if abs(m - p) <= 0.08 * p else "unmet"
print(f'{sys.argv[2]},{scope},rss-growth,{sys.argv[3]},{sys.argv[4]},{m},{p},{(m - p) / p:+.4f},0.08,{note},{sys.argv[5]},{s["total_parameters"]},{s["trainable_parameters"]}')
PY
  tail -1 "$out.tmp" | cut -d, -f1,6-8 >&2
done
# ONLY=PATTERN measures a subset into $out.only (the committed file keeps every row).
if [ -n "${ONLY:-}" ]; then mv "$out.tmp" "$out.only"; else mv "$out.tmp" "$out"; fi
rm -rf "$bin"
[ -z "${KEEP:-}" ] && rm -rf "$work"
exit 0
