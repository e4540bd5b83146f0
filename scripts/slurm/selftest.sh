#!/usr/bin/env bash
# Self-test of the localhost Slurm cluster (scripts/slurm/cluster.sh), no standard input needed:
#   1. starts a cluster in a temporary directory (stopped again on exit, whatever happens);
#   2. submits a 6-task job array throttled to 2 at a time (%2); each task is a tiny "trainer" that
#      counts deterministically, checkpoints atomically on SIGTERM/SIGUSR1 and resumes from its
#      checkpoint when it starts again;
#   3. preempts task 1 mid-run with `scontrol requeue` (SIGTERM -> checkpoint -> rerun with
#      SLURM_RESTART_COUNT=1 -> resume) and signals task 0 with `scancel --batch --signal=USR1`
#      (checkpoint, keep running);
#   4. checks that all tasks completed, the throttle held, task 1 ran twice and resumed where it
#      stopped, and every result equals the uninterrupted computation.
# Usage: scripts/slurm/selftest.sh        (KEEP=1 keeps the temporary directory)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd -P)
CLUSTER=$HERE/cluster.sh
STEPS=${SELFTEST_STEPS:-50}       # 0.1 s each
T0=$SECONDS

WORK=$(mktemp -d /tmp/decoupled-slurm.XXXXXX)
chmod 0755 "$WORK"
cleanup() {
    local rc=$?
    "$CLUSTER" stop "$WORK/cluster" || rc=1
    if [ $rc -ne 0 ] || [ "${KEEP:-0}" = 1 ]; then
        echo "selftest: kept $WORK"
    else
        rm -rf "$WORK"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

passed=0 failed=0
check() { # check DESCRIPTION COMMAND...
    local what=$1; shift
    if "$@"; then echo "ok - $what"; passed=$((passed + 1)); else echo "not ok - $what"; failed=$((failed + 1)); fi
}
fail() { echo "selftest: error: $*" >&2; dump; exit 1; }
dump() {
    for f in "$WORK"/run/log-* "$WORK"/run/task-*.out; do
        [ -e "$f" ] && { echo "----- $f"; cat "$f"; }
    done >&2
    for f in "$WORK"/cluster/log/slurmctld.log "$WORK"/cluster/log/slurmd.log; do
        [ -e "$f" ] && { echo "----- tail of $f"; tail -n 30 "$f"; }
    done >&2
}

# --- the cluster -------------------------------------------------------------------------------
client_env=$("$CLUSTER" start "$WORK/cluster")
eval "$client_env"
echo "selftest: cluster up in $((SECONDS - T0)) s ($(sinfo --version), SLURM_CONF=$SLURM_CONF)"

# --- the job -----------------------------------------------------------------------------------
RUN=$WORK/run
mkdir -p "$RUN"
cat >"$RUN/counter.sh" <<'EOF'
#!/bin/bash
# counter.sh SEED STEPS DIR: a deterministic "training run" of STEPS steps that checkpoints
# atomically on SIGTERM (then exits) and on SIGUSR1 (then goes on), and resumes from its checkpoint.
seed=$1 n=$2 dir=$3
ckpt=$dir/ckpt-$seed log=$dir/log-$seed
step=0 value=$seed
[ -s "$ckpt" ] && read -r step value <"$ckpt"
echo "start $(date +%s.%N) restart=${SLURM_RESTART_COUNT:-0} job=$SLURM_JOB_ID from_step=$step" >>"$log"
checkpoint() {
    echo "$step $value" >"$ckpt.tmp" && mv -f "$ckpt.tmp" "$ckpt"
    echo "$1 checkpoint step=$step" >>"$log"
}
trap 'checkpoint TERM; echo "end $(date +%s.%N)" >>"$log"; exit 143' TERM
trap 'checkpoint USR1' USR1
while [ "$step" -lt "$n" ]; do
    # One command, so that a signal handler never sees half an update.
    (( value = (value * 31 + step) % 1000003, step = step + 1 ))
    echo "$step" >"$dir/progress-$seed"
    sleep 0.1
done
echo "$value" >"$dir/result-$seed"
echo "done step=$step value=$value" >>"$log"
echo "end $(date +%s.%N)" >>"$log"
EOF
chmod +x "$RUN/counter.sh"
cat >"$RUN/array.sbatch" <<EOF
#!/bin/bash
#SBATCH --job-name=decoupled-selftest
#SBATCH --array=0-5%2
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=1
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --chdir=$RUN
#SBATCH --output=$RUN/task-%a.out
# exec: the trainer becomes the batch shell, so it receives the signals itself.
exec "$RUN/counter.sh" "\$SLURM_ARRAY_TASK_ID" $STEPS "$RUN"
EOF

expected() { # the uninterrupted computation
    local step=0 value=$1
    while [ $step -lt "$STEPS" ]; do (( value = (value * 31 + step) % 1000003, step = step + 1 )); done
    echo "$value"
}

JOB=$(sbatch --parsable "$RUN/array.sbatch" </dev/null)
JOB=${JOB%%;*}
echo "selftest: submitted job array $JOB"

wait_progress() { # wait_progress TASK MINSTEP: until the task has done MINSTEP steps
    local deadline=$((SECONDS + 40)) p
    while :; do
        p=$(cat "$RUN/progress-$1" 2>/dev/null || echo 0)
        [ "${p:-0}" -ge "$2" ] && { at_step=$p; return 0; }
        [ $SECONDS -lt $deadline ] || fail "task $1 did not reach step $2"
        sleep 0.1
    done
}

wait_progress 1 10
echo "selftest: scontrol requeue ${JOB}_1 at step $at_step"
scontrol requeue "${JOB}_1"
wait_progress 0 15
echo "selftest: scancel --batch --signal=USR1 ${JOB}_0 at step $at_step"
# Slurm 22.05: while tasks of the same array are still pending, scancel --signal delivers the signal
# but gets "Job can not be altered now" back and retries every ~5 s (redelivering) before failing
# with exit code 229; the first delivery is synchronous, so cut the retries short.
rc=0; timeout 3 scancel --batch --signal=USR1 "${JOB}_0" </dev/null 2>/dev/null || rc=$?
echo "selftest: scancel exit code $rc"

deadline=$((SECONDS + 90))
while [ -n "$(squeue -h -j "$JOB" -o '%i' 2>/dev/null)" ]; do
    [ $SECONDS -lt $deadline ] || fail "the job array did not finish in 90 s"
    sleep 0.5
done
echo "selftest: array done after $((SECONDS - T0)) s"

# --- checks ------------------------------------------------------------------------------------
# One line per task: "TASK STATE EXIT RESTARTS" from `scontrol show job -o` (no slurmdbd, no sacct).
scontrol show job -o "$JOB" | sed -E 's/.*ArrayTaskId=([0-9]+) .*JobState=([A-Z_]+) .*Restarts=([0-9]+) .*ExitCode=([0-9:]+) .*/\1 \2 \4 \3/' \
    | sort -n >"$RUN/states"
cat "$RUN/states"
check "6 tasks completed with exit code 0" \
    test "$(grep -c ' COMPLETED 0:0 ' "$RUN/states")" -eq 6
check "task 1 was restarted once (Restarts=1)" grep -qx '1 COMPLETED 0:0 1' "$RUN/states"
check "the other tasks ran once" test "$(awk '$1 != 1 && $4 == 0' "$RUN/states" | wc -l)" -eq 5

ok_results=0
for t in 0 1 2 3 4 5; do
    [ "$(cat "$RUN/result-$t" 2>/dev/null)" = "$(expected "$t")" ] && ok_results=$((ok_results + 1))
done
check "all 6 results equal the uninterrupted computation" test $ok_results -eq 6

term_step=$(sed -n 's/^TERM checkpoint step=//p' "$RUN/log-1" | head -n1)
resume_step=$(sed -n 's/^start .* restart=1 .* from_step=//p' "$RUN/log-1" | head -n1)
check "task 1 got SIGTERM mid-run and checkpointed (step ${term_step:-none})" \
    test -n "$term_step" -a "${term_step:-0}" -gt 0 -a "${term_step:-0}" -lt "$STEPS"
check "task 1 reran with SLURM_RESTART_COUNT=1 from its checkpoint (step ${resume_step:-none})" \
    test -n "$resume_step" -a "${resume_step:-x}" = "${term_step:-y}"
check "task 0 checkpointed on USR1 and went on in the same run" \
    sh -c "grep -q '^USR1 checkpoint' '$RUN/log-0' && test \$(grep -c '^start' '$RUN/log-0') -eq 1"

# At most 2 runs at once: sweep over the start/end times of every run.
maxrun=$(cat "$RUN"/log-* | awk '$1 == "start" {print $2, 1} $1 == "end" {print $2, -1}' | sort -n -k1,1 -k2,2n \
    | awk '{n += $2; if (n > m) m = n} END {print m + 0}')
check "the %2 throttle held (at most $maxrun tasks at once)" test "$maxrun" -le 2 -a "$maxrun" -ge 1
check "jobcomp file logged 6 completions and the requeue" \
    test "$(grep -c 'JobState=COMPLETED' "$WORK/cluster/log/jobcomp.txt")" -eq 6 -a \
         "$(grep -c 'ArrayTaskId=1 .*JobState=PENDING\|JobState=PENDING.*ArrayTaskId=1 ' "$WORK/cluster/log/jobcomp.txt")" -eq 1

[ $failed -eq 0 ] || dump
echo "selftest: finished in $((SECONDS - T0)) s"
echo "slurm selftest: $passed passed, $failed failed"
[ $failed -eq 0 ]
