#!/usr/bin/env bash
# A netdes sweep split into N shards run by GNU parallel, then merged.
#
#   docs/recipes/parallel-sweep.sh study.ron results/study 8
#
# Here all shards run on this machine, one core each. To spread them over machines that
# share the working directory (NFS), add `--sshlogin host1,host2 --workdir .` to the
# parallel command. An interrupted shard continues where it stopped when the script is
# run again (--resume).
set -euo pipefail
sweep=${1:?usage: parallel-sweep.sh SWEEP_FILE OUT N}
out=${2:?usage: parallel-sweep.sh SWEEP_FILE OUT N}
n=${3:?usage: parallel-sweep.sh SWEEP_FILE OUT N}
seq 1 "$n" | parallel --halt now,fail=1 \
    netdes sweep "$sweep" --shard {}/"$n" --jobs 1 --out "$out.shard-{}" --resume --quiet
netdes merge --out "$out" $(seq -f "$out.shard-%g" 1 "$n")
