#!/usr/bin/env bash
# Training speed: TorchSharp (this repo) vs Debian's python3-torch with OpenBLAS, same Llama-style model, same weights,
# same batch, back to back on the same machine; plus MFU against the fp32 matmul peak measured in the same process.
# usage: bench/training/run.sh [CONFIG.json] [BATCH] [SEQ] [STEPS]      (defaults: the ~10M medium model, 32 x 128, 3 steps)
# THREADS (default 1) sets OMP_NUM_THREADS/OPENBLAS_NUM_THREADS for both sides: on a machine shared with other busy
# processes, one thread each avoids OpenMP oversubscription; on an idle machine try THREADS=2.
# RESULTS (default bench/training/results.jsonl) is where the three JSON lines go.
set -euo pipefail
cd "$(dirname "$0")/../.."
config=${1:-bench/ground-truth/models/medium.json}
batch=${2:-32}; seq=${3:-128}; steps=${4:-3}
threads=${THREADS:-1}

need=()
for pkg in python3-torch libopenblas0-pthread python3-numpy; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
if [ ${#need[@]} -gt 0 ]; then
  sudo=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

out=$(mktemp -d)
bin=$out/bin
dotnet publish bench/training/TrainingBench -c Release -o "$bin" --nologo -v q >/dev/null
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads MKL_NUM_THREADS=$threads
echo "machine: $(nproc --all) cores, load $(cut -d' ' -f1-3 /proc/loadavg); threads per side: $threads; model $config, batch $batch x seq $seq, $steps timed steps"
results=${RESULTS:-bench/training/results.jsonl}
: > "$results.tmp"
for attention in eager sdpa; do
  dotnet "$bin/TrainingBench.dll" "$config" "$batch" "$seq" "$steps" "$attention" "$out" | tee -a "$results.tmp"
  if [ "$attention" = eager ]; then
    /usr/bin/python3 bench/training/llama_torch.py "$config" "$steps" "$out" | tee -a "$results.tmp"
  fi
done
mv "$results.tmp" "$results"
/usr/bin/python3 - "$results" <<'PY'
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
ts_eager, py, ts_sdpa = r
print(f"first loss TorchSharp {ts_eager['first_loss']:.6f} vs PyTorch {py['first_loss']:.6f} (same weights and batch)")
for name, ts in (("eager", ts_eager), ("sdpa", ts_sdpa)):
    print(f"TorchSharp {name}: {ts['steps_per_second']:.4f} steps/s = {ts['steps_per_second'] / py['steps_per_second']:.2f}x PyTorch eager "
          f"({py['steps_per_second']:.4f} steps/s); MFU {100 * ts['mfu']:.1f}% of {ts['matmul_peak_flops'] / 1e9:.1f} GFLOP/s matmul peak "
          f"({ts['achieved_flops'] / 1e9:.1f} GFLOP/s achieved)")
PY
rm -rf "$out"
