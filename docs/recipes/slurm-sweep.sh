#!/usr/bin/env bash
# A netdes sweep as a Slurm job array: array task K of N runs shard K/N of the sweep into
# OUT.shard-K, using the cores Slurm gave it. Number the tasks from 1.
#
#   sbatch --array=1-16 --cpus-per-task=8 docs/recipes/slurm-sweep.sh study.ron results/study
#
# A task that is requeued or rerun continues where it stopped (--resume). When all tasks
# are done, merge the shards (exit code 1 if a run is missing):
#
#   netdes merge --out results/study results/study.shard-*
#
# or let Slurm do it: sbatch --dependency=afterok:JOBID --wrap 'netdes merge --out results/study results/study.shard-*'
#SBATCH --job-name=netdes-sweep
#SBATCH --requeue
set -euo pipefail
sweep=${1:?usage: slurm-sweep.sh SWEEP_FILE OUT_PREFIX}
out=${2:?usage: slurm-sweep.sh SWEEP_FILE OUT_PREFIX}
k=${SLURM_ARRAY_TASK_ID:?run this with sbatch --array=1-N}
n=${SLURM_ARRAY_TASK_COUNT:?run this with sbatch --array=1-N}
exec netdes sweep "$sweep" --shard "$k/$n" --jobs "${SLURM_CPUS_PER_TASK:-1}" \
    --out "$out.shard-$k" --resume
