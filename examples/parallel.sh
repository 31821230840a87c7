#!/usr/bin/env bash
# A regimes study split into shards run by GNU parallel (on this machine, or on several with
# --sshloginfile), then merged. The same settings as examples/slurm.sh:
#
#   SHARDS=4 STUDY=speciation ARGS="--preset lu-tang --pairs 200000" examples/parallel.sh
#
#   SHARDS      number of shards                                 [4]
#   JOBS        shards run at once                               [$SHARDS]
#   STUDY       speciation | collapse | run                      [speciation]
#   ARGS        the study's flags (everything but --shard/--out) [--preset lu-tang --pairs 200000]
#   RESULTS     directory of the shard outputs and the merge    [results/$STUDY]
#   CHECKPOINT  --checkpoint-every                               [10m]
#   REGIMES     the regimes binary                               [regimes]
#
# Run it again after an interruption: complete shards are kept, interrupted ones resume.
set -euo pipefail

SHARDS=${SHARDS:-4}
JOBS=${JOBS:-$SHARDS}
STUDY=${STUDY:-speciation}
ARGS=${ARGS:---preset lu-tang --pairs 200000}
RESULTS=${RESULTS:-results/$STUDY}
CHECKPOINT=${CHECKPOINT:-10m}
REGIMES=${REGIMES:-regimes}
export STUDY ARGS RESULTS CHECKPOINT REGIMES SHARDS

# One shard: complete already, resumed, or started.
shard() {
    local i=$1 out="$RESULTS/shard-$1"
    if [[ -f "$out/shard.json" ]]; then
        return 0
    elif [[ -d "$out/.regimes-checkpoint" ]]; then
        "$REGIMES" resume "$out"
    else
        # shellcheck disable=SC2086 # ARGS holds several flags
        "$REGIMES" "$STUDY" $ARGS --shard "$i/$SHARDS" --checkpoint-every "$CHECKPOINT" \
            --out "$out" --force
    fi
}
export -f shard

mkdir -p "$RESULTS"
seq 0 $((SHARDS - 1)) | parallel --halt now,fail=1 -j "$JOBS" shard {}
"$REGIMES" merge "$RESULTS"/shard-* --out "$RESULTS/merged" --force
