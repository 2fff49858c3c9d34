#!/usr/bin/env bash
# slurm-up.sh: a one-node Slurm cluster on localhost, for integration tests.
#
#   .ci/slurm-up.sh [up|down|restart]      (default: up)
#
# `up` installs Debian's slurm-wlm and munge if missing, writes /etc/slurm/slurm.conf,
# creates a munge key if missing, starts munged, slurmctld and slurmd as plain daemons
# (containers here run no systemd: PID 1 is not an init) and waits until the node is
# usable (idle, or mixed/allocated if jobs are already running). Idempotent: daemons
# that are up with an unchanged config are left alone; a changed config restarts them.
# `down` stops the three daemons; `restart` is down then up. Needs root (uses sudo
# otherwise). Job and node state survive a restart (StateSaveLocation).
#
# Why each slurm.conf setting:
#  - SlurmctldHost=<short hostname>(127.0.0.1), NodeName=<short hostname> NodeAddr=127.0.0.1:
#    slurmd finds its own node by the short hostname, and every daemon/client talks to
#    127.0.0.1, so nothing depends on DNS or /etc/hosts.
#  - CPUs=<nproc> RealMemory=<free -m total> and no Sockets/Cores/Threads: a node
#    configured with more than slurmd detects is set DRAIN ("Low RealMemory", "Low
#    socket*core*thread count"); we take the smaller of nproc/free and `slurmd -C`.
#    Leaving out the topology makes every logical CPU its own allocation unit.
#  - SelectType=select/cons_tres + SelectTypeParameters=CR_CPU: several jobs share the
#    node, one per CPU. (CR_*_Memory is avoided: without DefMemPerCPU each job would
#    claim the whole node's memory and jobs would run one at a time.)
#  - ProctrackType=proctrack/linuxproc, TaskPlugin=task/none: no cgroups needed (the
#    cgroup plugins want a delegated, writable cgroup tree, which containers lack).
#  - PartitionName=debug Default=YES MaxTime=INFINITE State=UP: jobs need no -p.
#  - ReturnToService=2: a node that was DOWN (e.g. slurmd stopped) becomes usable again
#    as soon as slurmd registers with a valid config, no `scontrol update` needed.
#  - MinJobAge=86400, MaxJobCount=100000: finished jobs (and array tasks) stay visible
#    to `squeue -j`/`scontrol show job` for a day instead of the default 300 s.
#  - AccountingStorageType=accounting_storage/none: Slurm 22.05 has no file-based
#    accounting (only slurmdbd/MySQL), so `sacct` does not work here. Instead
#    JobCompType=jobcomp/filetxt appends one line per finished job/array task
#    (JobId=, ArrayJobId=, ArrayTaskId=, JobState=COMPLETED|FAILED|TIMEOUT|CANCELLED...)
#    to JobCompLoc=/var/log/slurm/jobcomp.log: a permanent record of final states.
#  - MailProg=/bin/true: silences "Configured MailProg is invalid" (no mail in CI).
#  - SlurmUser=slurm: Debian's default; its package already owns /var/lib/slurm and
#    /var/log/slurm. Jobs still run as the user who submitted them (root in CI).
#  - KillWait=5: a job past its time limit gets SIGTERM, then SIGKILL 5 s later.
#    (Limits are enforced by a periodic check; seen here: killed 0-5 s after the limit.)
#
# Reading per-array-task states (tested with Slurm 22.05.8):
#  - live and finished (for MinJobAge):  squeue -h -j JOBID -r -t all -o '%i %T %r'
#      -> "7_3 RUNNING None", "7_1 FAILED NonZeroExitCode", "7_0 TIMEOUT TimeLimit",
#         "7_2 CANCELLED None"; without `-t all` finished tasks are not listed.
#    exit codes: scontrol -o show job JOBID (one line per task: ArrayTaskId=, JobState=,
#    ExitCode=rc:signal).
#  - permanent: grep "ArrayJobId=JOBID " /var/log/slurm/jobcomp.log
#  - `scancel JOBID_N` of a still PENDING task drops it without any record; pending
#    tasks cancelled with `scancel JOBID` show as CANCELLED (one jobcomp line, no ArrayTaskId).
#  - sbatch --output to a missing directory: task FAILED, Reason JobLaunchFailure.
#
# Logs: /var/log/slurm/{slurmctld,slurmd}.log, /var/log/munge/munged.log.
set -euo pipefail

ACTION="${1:-up}"
TIMEOUT="${SLURM_UP_TIMEOUT:-60}"
CONF=/etc/slurm/slurm.conf
LOGDIR=/var/log/slurm
STATEDIR=/var/lib/slurm/slurmctld
SPOOLDIR=/var/lib/slurm/slurmd

if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "slurm-up: must run as root (no sudo found)" >&2; exit 1; }
  # Re-run the whole script as root: every step below touches /etc, /var or /run.
  exec sudo -E bash "$0" "$@"
fi

log() { echo "slurm-up: $*" >&2; }
die() {
  log "ERROR: $*"
  for f in /var/log/munge/munged.log "$LOGDIR/slurmctld.log" "$LOGDIR/slurmd.log"; do
    [ -f "$f" ] && { echo "---- last lines of $f" >&2; tail -n 30 "$f" >&2; }
  done
  command -v sinfo >/dev/null 2>&1 && { echo "---- sinfo -N -l" >&2; sinfo -N -l >&2 2>&1 || true; }
  exit 1
}

# pid of a running daemon (from its pid file, checked against /proc), or nothing.
daemon_pid() { # name pidfile
  local pid
  [ -f "$2" ] || return 0
  pid="$(cat "$2" 2>/dev/null || true)"
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$1" ] && echo "$pid"
  return 0
}

stop_daemon() { # name pidfile
  local pid i
  pid="$(daemon_pid "$1" "$2")"
  [ -n "$pid" ] || { rm -f "$2"; return 0; }
  log "stopping $1 (pid $pid)"
  kill "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do
    [ -r "/proc/$pid/comm" ] || break
    sleep 0.1
  done
  if [ -r "/proc/$pid/comm" ]; then log "$1 did not exit, SIGKILL"; kill -9 "$pid" 2>/dev/null || true; sleep 0.5; fi
  rm -f "$2"
}

MUNGE_PID=/run/munge/munged.pid
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid

down() {
  stop_daemon slurmd "$SLURMD_PID"
  stop_daemon slurmctld "$CTLD_PID"
  stop_daemon munged "$MUNGE_PID"
}

install_packages() {
  local missing=() pkg
  for pkg in slurm-wlm munge; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  apt-get update -qq
  # --no-install-recommends: the recommends are ~20 optional plugin/-dev packages.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

write_conf() { # prints "changed" if the file was (re)written
  local node cpus mem c m detected tmp
  node="$(hostname -s)"
  cpus="$(nproc)"
  mem="$(free -m | awk '/^Mem:/ {print $2}')"
  # Never configure more than slurmd itself detects, or the node drains.
  detected="$(slurmd -C 2>/dev/null | head -n 1 || true)"
  c="$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$detected")"
  m="$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$detected")"
  [ -n "$c" ] && [ "$c" -lt "$cpus" ] && cpus="$c"
  [ -n "$m" ] && [ "$m" -lt "$mem" ] && mem="$m"
  tmp="$(mktemp)"
  cat >"$tmp" <<EOF
# Written by .ci/slurm-up.sh (one-node test cluster); see the comments there.
ClusterName=geosr
SlurmctldHost=${node}(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
MailProg=/bin/true
SlurmctldPidFile=${CTLD_PID}
SlurmdPidFile=${SLURMD_PID}
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=${STATEDIR}
SlurmdSpoolDir=${SPOOLDIR}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MinJobAge=86400
MaxJobCount=100000
KillWait=5
InactiveLimit=0
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=${LOGDIR}/jobcomp.log
SlurmctldDebug=info
SlurmctldLogFile=${LOGDIR}/slurmctld.log
SlurmdDebug=info
SlurmdLogFile=${LOGDIR}/slurmd.log
NodeName=${node} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=${node} Default=YES MaxTime=INFINITE State=UP
EOF
  if [ -f "$CONF" ] && cmp -s "$tmp" "$CONF"; then
    rm -f "$tmp"
  else
    mkdir -p /etc/slurm
    install -m 0644 "$tmp" "$CONF"
    rm -f "$tmp"
    log "wrote $CONF (node $node, CPUs=$cpus, RealMemory=$mem)"
    echo changed
  fi
}

start_munge() {
  if [ ! -s /etc/munge/munge.key ]; then
    log "creating /etc/munge/munge.key"
    if command -v mungekey >/dev/null 2>&1; then
      mungekey --create --force --keyfile=/etc/munge/munge.key
    else
      dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
  fi
  # munged refuses a key that is not private to its own user.
  chown munge:munge /etc/munge /etc/munge/munge.key
  chmod 0700 /etc/munge
  chmod 0400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  chmod 0755 /run/munge
  if [ -z "$(daemon_pid munged "$MUNGE_PID")" ]; then
    log "starting munged"
    runuser -u munge -- /usr/sbin/munged || die "munged failed to start"
  fi
  munge -n | unmunge >/dev/null 2>&1 || die "munge round trip (munge -n | unmunge) failed"
}

node_state() {
  sinfo -h -N -n "$(hostname -s)" -o %T 2>/dev/null | head -n 1 || true
}

# slurmctld restores the node's old state (e.g. idle) from its state file before slurmd
# has registered; registration sets SlurmdStartTime to the running slurmd's start. That
# is the start of the process that daemonized, which `ps` does not see: the daemon we see
# forked from it, 16 s later on a loaded 2-core machine (a second .ci/run then waited for
# a registration it already had), so allow a minute.
slurmd_registered() {
  local pid started reg
  pid="$(daemon_pid slurmd "$SLURMD_PID")"
  [ -n "$pid" ] || return 1
  started="$(date -d "$(ps -o lstart= -p "$pid")" +%s)"
  reg="$(scontrol -o show node "$(hostname -s)" 2>/dev/null | sed -n 's/.*SlurmdStartTime=\([^ ]*\).*/\1/p')"
  [ -n "$reg" ] && [ "$reg" != "None" ] && [ "$(date -d "$reg" +%s)" -ge $((started - 60)) ]
}

up() {
  install_packages
  local changed
  changed="$(write_conf)"
  mkdir -p "$STATEDIR" "$SPOOLDIR" "$LOGDIR"
  chown slurm:slurm "$STATEDIR" "$LOGDIR"
  chmod 0755 "$STATEDIR" "$LOGDIR"
  if [ -n "$changed" ]; then
    stop_daemon slurmd "$SLURMD_PID"
    stop_daemon slurmctld "$CTLD_PID"
  fi
  start_munge
  if [ -z "$(daemon_pid slurmctld "$CTLD_PID")" ]; then
    log "starting slurmctld"
    /usr/sbin/slurmctld || die "slurmctld failed to start"
  fi
  if [ -z "$(daemon_pid slurmd "$SLURMD_PID")" ]; then
    log "starting slurmd"
    /usr/sbin/slurmd || die "slurmd failed to start"
  fi

  local state="" t=0 resumed=""
  while [ "$t" -lt "$TIMEOUT" ]; do
    state="$(node_state)"
    case "$state" in
      idle|mixed|allocated|completing)
        if slurmd_registered; then
          log "node $(hostname -s) is $state (after ${t}s)"
          return 0
        fi ;;
      drained|draining|drain|down)
        # Left over from an earlier config or run; with a valid registration resume it once.
        if [ -z "$resumed" ] && [ -n "$(daemon_pid slurmd "$SLURMD_PID")" ]; then
          log "node is $state, trying: scontrol update nodename=$(hostname -s) state=resume"
          scontrol update nodename="$(hostname -s)" state=resume 2>&1 | sed 's/^/slurm-up: /' >&2 || true
          resumed=1
        fi ;;
    esac
    if [ "$t" -ge 3 ]; then # a daemon that died at start (bad config, port in use) won't come back
      [ -n "$(daemon_pid slurmctld "$CTLD_PID")" ] || die "slurmctld is not running"
      [ -n "$(daemon_pid slurmd "$SLURMD_PID")" ] || die "slurmd is not running"
    fi
    sleep 1
    t=$((t + 1))
  done
  die "node $(hostname -s) not usable after ${TIMEOUT}s (state: '${state:-no answer from slurmctld}')"
}

case "$ACTION" in
  up) up ;;
  down) down ;;
  restart) down; up ;;
  *) echo "usage: $0 [up|down|restart]" >&2; exit 2 ;;
esac
