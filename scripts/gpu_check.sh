#!/usr/bin/env bash
# The one prepared GPU check of issue 12 (about 8 min): the learner update and a short training run
# on CUDA vs the same machine's CPU, side by side. Writes JSON and logs to ${OUT:-reports/gpu}.
#   OUT=reports/gpu scripts/gpu_check.sh          # on a machine with a GPU and torch+CUDA installed
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-reports/gpu}; mkdir -p "$OUT"
PY=${PY:-python}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD:$PWD/launchers${PYTHONPATH:+:$PYTHONPATH}" WANDB_MODE=disabled
$PY -c "import torch, jax; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '-'); print('jax', jax.__version__, jax.devices())" 2>&1 | tee "$OUT/versions.txt"
for dev in cuda cpu; do
  OMP_NUM_THREADS=1 timeout 200 $PY scripts/bench.py --device $dev --algos qmix,wqmix,res --rounds 3 \
    --block 30 --train-t-max 10000 --train-algos qmix --out "$OUT/bench_$dev.json" 2>&1 \
    | grep -v USDT | tee "$OUT/bench_$dev.log"
done
timeout 120 $PY run.py device=cuda method=mast t_max=8000 test_interval=2000 results_dir="$OUT/results" 2>&1 \
  | tail -5 | tee "$OUT/run_cuda.log"
