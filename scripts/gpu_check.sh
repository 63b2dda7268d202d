#!/usr/bin/env bash
# The one prepared GPU check of issue 12 (at most 9 min): the CUDA-graph update's equivalence test,
# the learner update (eager and graph-replayed) and short training runs on CUDA vs the same
# machine's CPU, side by side. Writes JSON and logs to ${OUT:-reports/gpu}.
#   OUT=reports/gpu scripts/gpu_check.sh          # on a machine with a GPU and torch+CUDA installed
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-reports/gpu}; mkdir -p "$OUT"
PY=${PY:-python}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD:$PWD/launchers${PYTHONPATH:+:$PYTHONPATH}" WANDB_MODE=disabled
$PY -c "import torch, jax; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '-'); print('jax', jax.__version__, jax.devices())" 2>&1 | tee "$OUT/versions.txt"
# the captured update against the packed fast path on the GPU (skipped without CUDA)
timeout 80 $PY -m pytest -q -p no:cacheprovider tests/test_graphs.py 2>&1 | tail -15 | tee "$OUT/test_graphs.log"
for dev in cuda cpu; do
  OMP_NUM_THREADS=1 timeout $([[ $dev = cuda ]] && echo 200 || echo 150) $PY scripts/bench.py --device $dev --algos qmix,wqmix,res --rounds 3 \
    --block 30 --train-t-max 10000 --train-algos qmix --out "$OUT/bench_$dev.json" 2>&1 \
    | grep -v USDT | tee "$OUT/bench_$dev.log"
done
timeout 100 $PY run.py device=cuda cuda_graphs=true method=mast t_max=8000 test_interval=2000 \
  results_dir="$OUT/results_graphs" 2>&1 | tail -5 | tee "$OUT/run_cuda_graphs.log"
