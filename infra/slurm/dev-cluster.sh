#!/usr/bin/env bash
# A single-node Slurm from Debian's packages, for tests and for trying the Slurm backend:
# munged, MariaDB + slurmdbd (accounting, so `sacct --name` lists finished jobs), slurmctld,
# slurmd and slurmrestd (JWT auth). Everything lives under one state folder; no systemd.
#
#   infra/slurm/dev-cluster.sh up       start what is not running, wait for an idle node, print exports
#   infra/slurm/dev-cluster.sh down     stop everything it started (pid files)
#   infra/slurm/dev-cluster.sh status   what runs, and sinfo
#
# `eval "$(infra/slurm/dev-cluster.sh up)"` sets SLURM_CONF, SLURM_REST_URL, SLURM_JWT (a token
# for SLURM_REST_USER), SLURM_REST_USER and METEOR_SLURM_SHARED_DIR. Needs root and the Debian packages
#   slurm-wlm slurm-client slurmrestd slurmdbd munge mariadb-server
# Settings (environment): METEOR_SLURM_STATE (/tmp/meteor-slurm), METEOR_SLURM_REST_PORT (6820),
# METEOR_SLURM_CTLD_PORT (6817), METEOR_SLURMD_PORT (6818), METEOR_SLURM_DBD_PORT (6819),
# METEOR_SLURM_DB_PORT (6833, MariaDB on 127.0.0.1), METEOR_SLURM_TOKEN_LIFESPAN (86400 s),
# METEOR_SLURM_REST_USER (root: the user the printed token is for).
set -euo pipefail

STATE=${METEOR_SLURM_STATE:-/tmp/meteor-slurm}
REST_PORT=${METEOR_SLURM_REST_PORT:-6820}
CTLD_PORT=${METEOR_SLURM_CTLD_PORT:-6817}
SLURMD_PORT=${METEOR_SLURMD_PORT:-6818}
DBD_PORT=${METEOR_SLURM_DBD_PORT:-6819}
DB_PORT=${METEOR_SLURM_DB_PORT:-6833}
TOKEN_LIFESPAN=${METEOR_SLURM_TOKEN_LIFESPAN:-86400}
API_VERSION=v0.0.38
# The user SLURM_JWT is for (REST requests, and the jobs they submit, run as this user).
REST_USER=${METEOR_SLURM_REST_USER:-root}

ETC=$STATE/etc
RUN=$STATE/run
LOGS=$STATE/log
SHARED=$STATE/shared
export SLURM_CONF=$ETC/slurm.conf
# A stale token would make the clients authenticate with it (see start_slurmrestd for the daemon).
unset SLURM_JWT

log() { echo "dev-cluster: $*" >&2; }
die() {
  log "$*"
  exit 1
}

alive() { # alive NAME: the daemon's pid file names a live process
  local pid
  [ -s "$RUN/$1.pid" ] || return 1
  pid=$(cat "$RUN/$1.pid")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

wait_for() { # wait_for SECONDS WHAT COMMAND...
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || die "timed out waiting for $what (logs in $LOGS)"
    sleep 0.2
  done
}

check_packages() {
  local missing=() bin
  for bin in munged slurmctld slurmd slurmrestd slurmdbd sbatch sacct mariadbd mariadb-install-db; do
    command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
  done
  [ ${#missing[@]} -eq 0 ] || die "missing ${missing[*]}: apt-get install -y slurm-wlm slurm-client slurmrestd slurmdbd munge mariadb-server"
  [ "$(id -u)" -eq 0 ] || die "must run as root (slurmd and the daemons' users)"
  id slurm >/dev/null 2>&1 || die "no user 'slurm' (the slurm-wlm package creates it)"
}

write_config() {
  mkdir -p "$ETC" "$RUN" "$LOGS" "$STATE/spool/ctld" "$STATE/spool/d" "$STATE/munge" "$STATE/mysql"
  # slurmrestd runs as `slurm`: it must reach slurm.conf and the munge socket.
  chmod 0755 "$STATE" "$ETC" "$RUN"
  chmod 0700 "$LOGS" "$STATE/spool" "$STATE/munge"
  mkdir -p "$SHARED"
  chmod 1777 "$SHARED"

  [ -s "$ETC/munge.key" ] || { head -c 1024 /dev/urandom >"$ETC/munge.key"; }
  chmod 0600 "$ETC/munge.key"
  [ -s "$ETC/jwt_hs256.key" ] || { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$ETC/jwt_hs256.key"; }
  chmod 0600 "$ETC/jwt_hs256.key"
  [ -s "$ETC/db.password" ] || { head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$ETC/db.password"; }
  chmod 0600 "$ETC/db.password"

  local host node
  host=$(hostname -s)
  # The node as slurmd sees it (CPUs, sockets, cores, memory), so jobs fit what is really there.
  node=$(slurmd -C | head -n 1)
  cat >"$ETC/slurm.conf" <<EOF
# Written by infra/slurm/dev-cluster.sh: a single-node development cluster.
ClusterName=meteor
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
CredType=cred/munge
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=$ETC/jwt_hs256.key
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
# No cgroups in containers: track processes by parent pid, no task binding.
ProctrackType=proctrack/linuxproc
MpiDefault=none
MailProg=/bin/true
TaskPlugin=task/none
SchedulerType=sched/backfill
# Start batch jobs as soon as they are submitted (the default waits up to 3 s to batch them).
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
# Finished jobs stay visible to squeue/scontrol/REST for 10 minutes; sacct has them for good.
MinJobAge=600
# Job history for sacct (22.05 has no file-based accounting storage: it needs slurmdbd).
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
$node State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

  cat >"$ETC/slurmdbd.conf" <<EOF
# Written by infra/slurm/dev-cluster.sh
AuthType=auth/munge
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=$ETC/jwt_hs256.key
DbdHost=localhost
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$RUN/slurmdbd.pid
LogFile=$LOGS/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$(cat "$ETC/db.password")
StorageLoc=slurm_acct_db
EOF
  chmod 0600 "$ETC/slurmdbd.conf"
}

# munge's default socket: the Slurm 22.05 clients ignore AuthInfo=socket= when they talk to
# slurmdbd, so a private socket does not work. A munged already answering there (the host's
# own) is used as it is: every daemon here talks to the same one.
MUNGE_SOCKET=/run/munge/munge.socket.2
munge_ok() { munge -n -S "$MUNGE_SOCKET" | unmunge -S "$MUNGE_SOCKET"; }

start_munge() {
  alive munged && return
  munge_ok >/dev/null 2>&1 && return
  mkdir -p /run/munge
  munged --force --key-file="$ETC/munge.key" --socket="$MUNGE_SOCKET" \
    --pid-file="$RUN/munged.pid" --log-file="$LOGS/munged.log" --seed-file="$STATE/munge/seed"
  wait_for 10 munged munge_ok
}

db() { mariadb --no-defaults --protocol=socket --socket="$RUN/mysql.sock" -u root "$@"; }

start_mariadb() {
  alive mariadb && return
  if [ ! -d "$STATE/mysql/mysql" ]; then
    mariadb-install-db --no-defaults --datadir="$STATE/mysql" --user=root --skip-test-db \
      --auth-root-authentication-method=socket >"$LOGS/mariadb-install.log" 2>&1 ||
      die "mariadb-install-db failed (see $LOGS/mariadb-install.log)"
  fi
  setsid mariadbd --no-defaults --user=root --datadir="$STATE/mysql" --socket="$RUN/mysql.sock" \
    --bind-address=127.0.0.1 --port="$DB_PORT" --pid-file="$RUN/mariadb.pid" \
    --skip-name-resolve --innodb-buffer-pool-size=64M --log-error="$LOGS/mariadb.log" \
    </dev/null >/dev/null 2>&1 &
  wait_for 60 MariaDB db -e 'SELECT 1'
  local pw
  pw=$(cat "$ETC/db.password")
  db -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$pw';
         ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$pw';
         GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
}

start_slurmdbd() {
  alive slurmdbd && return
  slurmdbd
  # sacctmgr answers once slurmdbd has its tables.
  wait_for 60 slurmdbd sacctmgr -n list cluster
}

start_slurmctld() {
  alive slurmctld && return
  # -i: a state file from an older run that no longer matches the config is ignored, not fatal.
  slurmctld -i
  wait_for 30 slurmctld scontrol ping
}

start_slurmd() {
  alive slurmd && return
  slurmd
}

node_idle() { sinfo -h -N -o %t | grep -qE '^(idle|mix|alloc)'; }

start_slurmrestd() {
  alive slurmrestd && return
  # It refuses to run as root: it binds the port, then becomes `slurm`. SLURM_JWT=daemon makes it
  # talk to slurmctld with auth/jwt (the callers' tokens); without it, it uses munge and rejects them.
  SLURM_JWT=daemon setsid slurmrestd -u slurm -g slurm -a rest_auth/jwt -s "openapi/$API_VERSION,openapi/db${API_VERSION}" \
    "127.0.0.1:$REST_PORT" </dev/null >"$LOGS/slurmrestd.log" 2>&1 &
  echo $! >"$RUN/slurmrestd.pid"
  wait_for 20 slurmrestd bash -c "exec 3<>/dev/tcp/127.0.0.1/$REST_PORT"
}

print_exports() {
  local token
  token=$(scontrol token username="$REST_USER" lifespan="$TOKEN_LIFESPAN" | sed -n 's/^SLURM_JWT=//p')
  [ -n "$token" ] || die "scontrol token gave no token"
  echo "export SLURM_CONF=$SLURM_CONF"
  echo "export SLURM_REST_URL=http://127.0.0.1:$REST_PORT"
  echo "export SLURM_JWT=$token"
  echo "export SLURM_REST_USER=$REST_USER"
  echo "export METEOR_SLURM_SHARED_DIR=$SHARED"
}

cmd_up() {
  check_packages
  local started=$SECONDS
  write_config
  start_munge
  start_mariadb
  start_slurmdbd
  start_slurmctld
  start_slurmd
  wait_for 60 "the node to be idle" node_idle
  start_slurmrestd
  log "up in $((SECONDS - started)) s (state in $STATE)"
  print_exports
}

stop() { # stop NAME: TERM, then KILL after 10 s
  local pid i
  [ -s "$RUN/$1.pid" ] || return 0
  pid=$(cat "$RUN/$1.pid")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for i in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    log "stopped $1 ($pid)"
  fi
  rm -f "$RUN/$1.pid"
}

cmd_down() {
  local name i
  for name in slurmrestd slurmd slurmctld slurmdbd mariadb munged; do stop "$name"; done
  # A daemon whose pid file is gone (a crashed `up`, a removed file) still names the state folder
  # on its command line: stop it too, so `up` never meets a stale one on its port.
  if pgrep -f -- "$STATE/" >/dev/null 2>&1; then
    pkill -TERM -f -- "$STATE/" 2>/dev/null || true
    for i in $(seq 50); do
      pgrep -f -- "$STATE/" >/dev/null 2>&1 || break
      sleep 0.2
    done
    pkill -KILL -f -- "$STATE/" 2>/dev/null || true
    log "stopped leftover processes of $STATE"
  fi
}

cmd_status() {
  local name rc=0
  for name in munged mariadb slurmdbd slurmctld slurmd slurmrestd; do
    if alive "$name"; then echo "$name: running ($(cat "$RUN/$name.pid"))"; else
      echo "$name: stopped"
      rc=3
    fi
  done
  if [ -f "$SLURM_CONF" ] && alive slurmctld; then sinfo || true; fi
  return $rc
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
*)
  echo "usage: $0 up|down|status" >&2
  exit 2
  ;;
esac
