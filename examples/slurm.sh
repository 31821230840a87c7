#!/usr/bin/env bash
# A regimes study on a Slurm cluster: one shard per array task, then a merge job that runs once
# every shard succeeded (afterok). Requeued tasks (preemption) resume from their checkpoint.
#
#   examples/slurm.sh submit [SBATCH OPTIONS]   # from a login node: the array and the merge
#                                               # (prints their job ids, one a line)
#
# SBATCH OPTIONS go to both sbatch calls and override the #SBATCH lines below, e.g.
#   examples/slurm.sh submit --partition=gpu --cpus-per-task=4 --time=1:00:00
#
# Settings (environment variables, exported to the jobs):
#   SHARDS      number of shards = array tasks                   [8]
#   STUDY       speciation | collapse | run                      [speciation]
#   ARGS        the study's flags (everything but --shard/--out) [--preset lu-tang --pairs 1000000]
#   RESULTS     directory of the shard outputs and the merge    [results/$STUDY]
#   CHECKPOINT  --checkpoint-every: a duration or a step count   [10m]
#   REGIMES     the regimes binary                               [regimes]
#
# Each array task runs `regimes $STUDY $ARGS --shard I/N --out $RESULTS/shard-I`; if Slurm
# requeues it (preemption, node failure, `scontrol requeue`), it continues with `regimes resume`.
# regimes writes a checkpoint on the SIGTERM Slurm sends before killing a job. Slurm does not
# requeue a task that reached its --time: submit again, and the tasks continue from their
# checkpoints (completed shards are skipped). The merge job writes $RESULTS/merged: the summary,
# CSV series and plots of the unsharded study. scripts/slurm-check runs this on a real Slurm.
#
#SBATCH --job-name=regimes
#SBATCH --cpus-per-task=8
#SBATCH --time=04:00:00
#SBATCH --requeue
#SBATCH --output=regimes-%A_%a.out
#SBATCH --open-mode=append
set -euo pipefail

SHARDS=${SHARDS:-8}
STUDY=${STUDY:-speciation}
ARGS=${ARGS:---preset lu-tang --pairs 1000000}
RESULTS=${RESULTS:-results/$STUDY}
CHECKPOINT=${CHECKPOINT:-10m}
REGIMES=${REGIMES:-regimes}
export SHARDS STUDY ARGS RESULTS CHECKPOINT REGIMES

case "${1:-task}" in
submit)
    shift
    # The array (one task per shard), then the merge once every task succeeded.
    array=$(sbatch --parsable "$@" --array="0-$((SHARDS - 1))" "$0" task)
    array=${array%%;*} # --parsable prints "jobid" or "jobid;cluster"
    merge=$(sbatch --parsable "$@" --dependency="afterok:$array" --job-name=regimes-merge \
        --cpus-per-task=1 --output=regimes-merge-%j.out "$0" merge)
    echo "$array"         # the job ids, one a line, for squeue, scancel or scontrol
    echo "${merge%%;*}"
    ;;
merge)
    "$REGIMES" merge "$RESULTS"/shard-* --out "$RESULTS/merged" --force
    ;;
task)
    # regimes replaces this shell (exec): Slurm's SIGTERM reaches it alone, and the job ends when
    # it has saved its checkpoint, not when the shell dies, leaving it unwatched.
    i=${SLURM_ARRAY_TASK_ID:?run as a Slurm array task (or use: $0 submit)}
    n=${SLURM_ARRAY_TASK_COUNT:-$SHARDS}
    out="$RESULTS/shard-$i"
    mkdir -p "$RESULTS"
    if [[ -f "$out/shard.json" ]]; then
        echo "shard $i/$n is already complete in $out"
    elif [[ -d "$out/.regimes-checkpoint" ]]; then
        # Requeued (preemption) or submitted again (time limit): continue where it stopped.
        echo "shard $i/$n: resuming from its checkpoint in $out"
        exec "$REGIMES" resume "$out"
    else
        # shellcheck disable=SC2086 # ARGS holds several flags
        exec "$REGIMES" "$STUDY" $ARGS --shard "$i/$n" --checkpoint-every "$CHECKPOINT" \
            --out "$out" --force
    fi
    ;;
*)
    echo "usage: $0 [submit | task | merge]" >&2
    exit 2
    ;;
esac
