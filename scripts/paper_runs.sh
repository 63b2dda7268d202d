#!/usr/bin/env bash
# The long runs behind the README's results, as resumable sweeps in priority order.
#
#   scripts/paper_runs.sh                 # every stage, in order: the cheapest complete result first
#   scripts/paper_runs.sh table1 facmac   # some stages
#   STAGES_DRY=1 scripts/paper_runs.sh    # list each stage's jobs and their state, start nothing
#
# Rerunning is safe: finished runs are skipped by run id (on a fresh machine too: the archive's
# finished runs are first linked into the store, `archive_runs.py --restore`), partial ones
# resume from their last checkpoint (checkpoint_interval=50000 keeps a session's loss small),
# and a run another process trains is refused by its lock. Pair it with the archiver so each
# finished run is committed as soon as it ends:
#   python scripts/archive_runs.py 'results/*' --watch 300 --commit
# Extra Hydra overrides for every sweep go in $EXTRA (e.g. EXTRA='hydra.launcher.address=auto');
# with results_dir=DIR there, also set RESULTS=DIR (where stages look for their source runs).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
COMMON="checkpoint_interval=50000 ${EXTRA:-}"
[[ -n "${STAGES_DRY:-}" ]] && COMMON="$COMMON hydra.launcher.dry_run=true"

# A sweep with a failed job exits non-zero; the next stages still run (rerun the script later:
# the failed run resumes from its last checkpoint).
sweep_budget() {  # sweep_budget T_MAX overrides...
  local t_max=$1
  shift
  echo "=== $(date -u +%FT%TZ) t_max=$t_max $*"
  $PY run.py -m "$@" t_max="$t_max" $COMMON || echo "=== sweep exited with status $?; continuing"
}
sweep() { sweep_budget 1000000 "$@"; }

table1() {  # issue 13: Table 1 rows, seed-major so every row has a seed early
  for seed in 0 1 2; do
    sweep algo=qmix env.map=2s3z sparsity=0.95 seed=$seed method=dense,static,rigl,mast
    sweep algo=wqmix env.map=3m sparsity=0.9 seed=$seed method=dense,static,rigl,mast
    sweep algo=res env.map=3m sparsity=0.95 seed=$seed method=dense,static,rigl,mast
  done
}

diag2s3z() {  # issue 13's investigation of QMIX 2s3z, where MAST at 95% reached 61.5% of dense
  # on seed 0: which component costs it (T0 / TD(λ), Soft Mellowmax) and whether it is the level
  sweep algo=qmix env.map=2s3z sparsity=0.95 seed=0 method=mast ablation=no_hybrid_td,no_soft_mellowmax
  # the max operator did best (85.3% vs 61.5%): does Soft Mellowmax in Q_tot units (as FACMAC) fix it?
  sweep algo=qmix env.map=2s3z sparsity=0.95 seed=0,1 method=mast method.operator_scale=mixer_slope
  sweep algo=qmix env.map=2s3z sparsity=0.9 seed=0 method=mast,rigl
}

diagres() {  # issue 13: RES 3m 95%, where MAST (86.9% of dense) tied RigL (88.2%) over seeds 0-2:
  # MAST-RES is RigL + hybrid TD(λ) + dual buffer (RES's softmax is its operator); which carries it
  sweep algo=res env.map=3m sparsity=0.95 seed=0 method=mast ablation=no_hybrid_td,offline_only
}

diagwqmix() {  # issue 13: WQMIX 3m 90%, where MAST's Q estimate sat far below the discounted return
  # (seed 2: 5.3 vs 16.2); is the per-agent Soft Mellowmax the cost, as on 2s3z? (the max operator)
  sweep algo=wqmix env.map=3m sparsity=0.9 seed=2,0 method=mast ablation=no_soft_mellowmax
}

facmac() {  # issue 15: MAST-FACMAC on SMAX 3m (Fig. 18). Soft Mellowmax in Q_tot units
  # (README "MAST-FACMAC: where the operator's bias comes from"); the max-operator rows ignore it
  sweep algo=facmac env.map=3m sparsity=0.9 seed=0,1,2 method=dense,mast,rigl,static \
    method.operator_scale=mixer_slope
}

qmix3m() {  # QMIX 3m at 90%: the ticket sources of Fig. 10 and the sparsity-sweep anchor
  sweep algo=qmix env.map=3m sparsity=0.9 seed=0,1,2 method=dense,static,rigl,mast
}

tickets() {  # issue 11, Fig. 10 at its source's budget, 400k steps: the winning ticket of the
  # archived 400k MAST seed-0 run and the random ticket (MAST's recipe), seeds 0-2; MAST 400k
  # seeds 1-2 (the cheating ticket's other seeds); then a RigL 400k seed-0 source and its ticket.
  # A ticket's run id follows its mask's content, so the archive path resumes the same runs.
  local mast=$PWD/docs/results/runs/qmix_smax-3m_mast_sp0.9_none_seed0_dc420a04 rigl
  sweep_budget 400000 algo=qmix env.map=3m sparsity=0.9 seed=0,1,2 method=ticket \
    "method.mask_from=$mast,random"
  sweep_budget 400000 algo=qmix env.map=3m sparsity=0.9 seed=1,2 method=mast
  sweep_budget 400000 algo=qmix env.map=3m sparsity=0.9 seed=0 method=rigl
  rigl=$(grep -lE '"t_max": 400000[,}]' \
         "${RESULTS:-results}"/qmix_smax-3m_rigl_sp0.9_none_seed0_*/summary.json 2>/dev/null \
         | head -1 | xargs -r dirname || true)
  if [[ -n "$rigl" ]]; then
    sweep_budget 400000 algo=qmix env.map=3m sparsity=0.9 seed=0,1,2 method=ticket \
      "method.mask_from=$rigl"
  else
    echo "=== no finished RigL 400k seed-0 run in ${RESULTS:-results}: its ticket waits"
  fi
}

per_agent() {  # issue 11, Fig. 12 on 2s3z at 90%, per-agent networks at 400k steps (the budget
  # this machine affords): MAST's adaptive global budget vs three manual unit-type patterns
  # (one sweep, so its jobs share the launcher's slots; null is the adaptive global budget).
  # Seed 0 is archived; seeds 1-2 are 8 more runs of ≈1 h.
  sweep_budget 400000 env.map=2s3z agent.share_params=false sparsity=0.9 seed=0,1,2 method=mast \
    'method.unit_density=null,{stalker: 0.1, zealot: 0.1},{stalker: 0.08, zealot: 0.12},{stalker: 0.14, zealot: 0.06}'
}

critical() {  # issue 11: automatic critical-sparsity search, QMIX 3m, 400k steps per level, seeds
  # 0-1 (dense and MAST 0.9 seed 0-1 runs are already in the store); a 0.05 resolution. A first
  # grid of 0.8/0.9/0.95 failed at 0.8 already (78.5% vs the 78.9% threshold), so it starts lower.
  echo "=== $(date -u +%FT%TZ) critical search"
  $PY run.py -m hydra/sweeper=critical algo=qmix env.map=3m method=mast t_max=400000 \
    'hydra.sweeper.seeds=[0,1]' 'hydra.sweeper.grid=[0.5,0.7,0.8,0.9]' hydra.sweeper.resolution=0.05 \
    $COMMON || echo "=== search exited with status $?"
}

comix() {  # issue 14: MAST-COMIX on ManySegmentSwimmer 10x2 (Fig. 17), the 2-hour CPU check
  # (conf/experiment/comix_swimmer_2h_v2.yaml: 200k steps, uniform warm-up, cheaper CEM,
  # 80 updates of 100 transitions per episode)
  echo "=== $(date -u +%FT%TZ) comix_swimmer_2h_v2"
  # checkpoints every 2 rollouts with the replay (≈100 MB): a 200k-step run resumes exactly
  $PY run.py -m +experiment=comix_swimmer_2h_v2 sparsity=0.9 seed=0,1,2 method=dense,mast,rigl,static \
    ${COMMON/checkpoint_interval=50000/checkpoint_interval=16000 save_buffer=true} \
    || echo "=== sweep exited with status $?; continuing"
}

diagcomix() {  # issue 14: why dense COMIX does not hold a policy above random on the Swimmer
  # (docs/results/comix_swimmer.md "A second dense seed, double Q, and the critic's error"):
  # double Q, then Soft Mellowmax on dense (does a calibrated critic alone stabilise it?)
  local v2="+experiment=comix_swimmer_2h_v2 sparsity=0.9"
  local ck=${COMMON/checkpoint_interval=50000/checkpoint_interval=16000 save_buffer=true}
  $PY run.py -m $v2 seed=0,1 method=dense algo.bootstrap_actions=online $ck || echo "=== status $?"
  $PY run.py -m $v2 seed=0 method=mast algo.bootstrap_actions=online $ck || echo "=== status $?"
  $PY run.py -m $v2 seed=0 method=dense method.operator=soft_mellowmax algo.bootstrap_actions=online \
    $ck || echo "=== status $?"
  # FACMAC's sampling (100 uniform transitions per update), then twice the updates
  $PY run.py -m $v2 seed=0,1 method=dense train.batch_size_episodes=100 algo.seq_window_steps=1 \
    train.sample_with_replacement=true $ck || echo "=== status $?"
  $PY run.py -m $v2 seed=0 method=dense train.updates_per_episode=160 $ck || echo "=== status $?"
  # a lower learning rate, and TD3's clipped double Q (twin critics)
  $PY run.py -m $v2 seed=0,1 method=dense algo.lr=0.0003 $ck || echo "=== status $?"
  $PY run.py -m $v2 seed=0,1,2 method=dense algo.twin_critics=true $ck || echo "=== status $?"
  $PY run.py -m $v2 seed=0,1 method=mast algo.twin_critics=true $ck || echo "=== status $?"
  # twin critics over twice the env steps (≈2 h with another job on the other core)
  $PY run.py -m $v2 seed=0,1 method=dense algo.twin_critics=true t_max=400000 $ck || echo "=== status $?"
  # TD3's target policy smoothing on top of the twin critics (TD3's σ 0.2, clip 0.5)
  $PY run.py -m $v2 seed=0,1 method=dense algo.twin_critics=true algo.target_noise=0.2 $ck \
    || echo "=== status $?"
  $PY run.py -m $v2 seed=0 method=mast algo.twin_critics=true algo.target_noise=0.2 $ck \
    || echo "=== status $?"
  # the Swimmer's long horizon: γ = 0.999 (FACMAC 0.99; single-agent Swimmer needs γ ≈ 0.9999
  # for TD learners, the tuned RL Zoo settings)
  $PY run.py -m $v2 seed=0 method=dense algo.twin_critics=true train.gamma=0.999 $ck \
    || echo "=== status $?"
  # TD3's τ = 0.005 on top of the twin critics: 16,000 updates at FACMAC's τ = 0.001 are only 16
  # target time constants (FACMAC's 2M updates: 2,000); was the slow target the limit? (README: no)
  $PY run.py -m $v2 seed=0,1 method=dense algo.twin_critics=true algo.target_tau=0.005 $ck \
    || echo "=== status $?"
  # MAST's hybrid TD(λ) on the dense twin critics: multi-step targets from T0 = 0.375·t_max on
  $PY run.py -m $v2 seed=0,1,2 method=dense algo.twin_critics=true method.multistep=td_lambda $ck \
    || echo "=== status $?"
  # MAST's layer budget: uniform 90% leaves each agent's Q_i on 40 of the 400 last-layer units and
  # 1.6 inputs per first-layer unit; ERK (Evci et al. 2020) keeps those small layers dense and
  # thins the 400×400 one instead (README "Where the comparison stands")
  $PY run.py -m $v2 seed=0,1,2 method=mast algo.twin_critics=true method.distribution=erk $ck \
    || echo "=== status $?"
  # the issue's comparison: RigL and static at MAST's ERK budget, same seeds (README table)
  $PY run.py -m $v2 seed=0,1,2 method=rigl,static algo.twin_critics=true method.distribution=erk \
    $ck || echo "=== status $?"
  # which part of MAST costs it against dense + TD(λ): the 90% RigL network with TD(λ) alone
  # (MAST without Soft Mellowmax and the dual buffer)
  $PY run.py -m $v2 seed=0 method=rigl method.multistep=td_lambda algo.twin_critics=true $ck \
    || echo "=== status $?"
  # is Soft Mellowmax on top of the twin critics' minimum one pessimistic correction too many?
  # (MAST ERK's critics underestimate: Q at t = 0 −0.4 / −1.3 vs discounted returns +14 / +15)
  $PY run.py -m $v2 seed=0,1 method=mast ablation=no_soft_mellowmax algo.twin_critics=true \
    method.distribution=erk $ck || echo "=== status $?"
  # three seeds leave MAST and static unordered (seed std 37 and 60 against dense's 10): seed 3
  # of the three sparse methods, then of dense + TD(λ) (README "Where the comparison stands")
  $PY run.py -m $v2 seed=3 method=mast,rigl,static algo.twin_critics=true method.distribution=erk \
    $ck || echo "=== status $?"
  $PY run.py -m $v2 seed=3 method=dense algo.twin_critics=true method.multistep=td_lambda $ck \
    || echo "=== status $?"
  # RigL beats MAST on all four seeds: which of MAST's additions costs it? One-step targets and
  # the single buffer on seed 2 (the widest gap: MAST −69.0, RigL +21.8)
  $PY run.py -m $v2 seed=2 method=mast ablation=no_hybrid_td,offline_only algo.twin_critics=true \
    method.distribution=erk $ck || echo "=== status $?"
  # one-step targets recovered 59 of the 91-point gap on seed 2: the same ablation on seeds 0-1
  $PY run.py -m $v2 seed=0,1 method=mast ablation=no_hybrid_td algo.twin_critics=true \
    method.distribution=erk $ck || echo "=== status $?"
  # it did (+2.6 / +9.3 / −10.0 against MAST's +2.8 / −19.1 / −69.0): the single buffer on seeds
  # 0-1 completes the component picture
  $PY run.py -m $v2 seed=0,1 method=mast ablation=offline_only algo.twin_critics=true \
    method.distribution=erk $ck || echo "=== status $?"
  # MAST and RigL part after T0 on five seeds (README): does TD(λ) cost a sparse critic here on
  # its own? RigL at the ERK budget with MAST's hybrid TD(λ), nothing else of MAST's
  $PY run.py -m $v2 seed=0,1 method=rigl method.multistep=td_lambda algo.twin_critics=true \
    method.distribution=erk $ck || echo "=== status $?"
}

comix8() {  # issue 14: the paper's eight seeds (§4: "eight independent runs") for the Swimmer
  # comparison; four seeds leave a ≈20-point standard error on a mean difference (seed std 13-52).
  # Seed pairs first, so every session's finished runs are paired comparisons (MAST and RigL
  # before static and dense); dense + TD(λ) needs its own sweep, its overrides differ.
  local v2="+experiment=comix_swimmer_2h_v2 sparsity=0.9 algo.twin_critics=true"
  local ck=${COMMON/checkpoint_interval=50000/checkpoint_interval=16000 save_buffer=true}
  for seeds in 4,5 6,7; do
    echo "=== $(date -u +%FT%TZ) comix8: seeds $seeds"
    $PY run.py -m $v2 seed=$seeds method=mast,rigl method.distribution=erk $ck || echo "=== status $?"
    $PY run.py -m $v2 seed=$seeds method=static method.distribution=erk $ck || echo "=== status $?"
    $PY run.py -m $v2 seed=$seeds method=dense method.multistep=td_lambda $ck || echo "=== status $?"
  done
}

ALL_STAGES=(facmac table1 diag2s3z diagres diagwqmix qmix3m tickets per_agent critical comix diagcomix comix8)  # default order
stages=("$@")
[[ ${#stages[@]} -eq 0 ]] && stages=("${ALL_STAGES[@]}")
for s in "${stages[@]}"; do
  declare -F "$s" >/dev/null || { echo "unknown stage '$s'; allowed: ${ALL_STAGES[*]}" >&2; exit 2; }
done
$PY scripts/archive_runs.py --restore "${RESULTS:-results}"
for s in "${stages[@]}"; do "$s"; done
