#!/usr/bin/env bash
# Make sure a Docker Engine answers on this machine: install Debian's docker.io
# if dockerd is missing, start dockerd in the background if it is not answering
# (there is no systemd on our machines), wait for it (bounded), print a summary.
#
# Idempotent and safe to call repeatedly or concurrently (a lock serialises
# callers). Needs root. Exit 0 when `docker info` answers, non-zero otherwise.
#
# Environment:
#   DOCKER_WAIT_SECONDS    how long to wait for the daemon to answer (default 60)
#   DOCKER_STORAGE_DRIVER  force a storage driver (default: dockerd's choice,
#                          overlay2 here; falls back to vfs if dockerd dies)
#   DOCKERD_LOG            dockerd's log file (default /var/log/dockerd.log)
#   DOCKER_HOST            if it names a non-unix endpoint, nothing is
#                          installed or started: we only wait for it to answer
set -euo pipefail

log() { printf '[ensure_docker] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

WAIT_SECONDS="${DOCKER_WAIT_SECONDS:-60}"
DOCKERD_LOG="${DOCKERD_LOG:-/var/log/dockerd.log}"
LOCK_FILE="/run/opencode-live-ensure-docker.lock"

answers() { timeout 10 docker info >/dev/null 2>&1; }

summary() {
    docker info --format \
'server {{.ServerVersion}} | storage {{.Driver}} | cgroup {{.CgroupVersion}}/{{.CgroupDriver}} | runtime {{.DefaultRuntime}} | init {{.InitBinary}} | security {{json .SecurityOptions}} | cpus {{.NCPU}} | mem {{.MemTotal}} | root {{.DockerRootDir}}' \
        2>/dev/null || docker info 2>&1 | head -40
    docker version --format 'client {{.Client.Version}} (API {{.Client.APIVersion}}) at '"$(command -v docker)"', server API {{.Server.APIVersion}}' 2>/dev/null || true
}

alive() {  # a zombie (never reaped) counts as dead
    local st; st="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
    [[ -n "$st" && "$st" != Z* ]]
}

wait_until_answers() {  # $1 = pid of the dockerd we started, or empty
    local pid="${1:-}" deadline=$((SECONDS + WAIT_SECONDS))
    while ((SECONDS < deadline)); do
        if answers; then return 0; fi
        if [[ -n "$pid" ]] && ! alive "$pid"; then
            return 2   # the dockerd we started has died
        fi
        sleep 0.5
    done
    return 1
}

# A remote daemon: we can only wait for it.
if [[ -n "${DOCKER_HOST:-}" && "${DOCKER_HOST}" != unix://* ]]; then
    command -v docker >/dev/null || die "no docker client on PATH (DOCKER_HOST=${DOCKER_HOST})"
    if wait_until_answers ""; then summary; exit 0; fi
    die "DOCKER_HOST=${DOCKER_HOST} did not answer within ${WAIT_SECONDS}s"
fi

# Fast path: already answering (no root needed to find that out).
if command -v docker >/dev/null && answers; then
    summary
    exit 0
fi

[[ "$(id -u)" -eq 0 ]] || die "must run as root to install or start dockerd (running as uid $(id -u)); run it with sudo or as root"

exec 9>"$LOCK_FILE"
flock -w $((WAIT_SECONDS + 120)) 9 || die "timed out waiting for another ensure_docker.sh (lock $LOCK_FILE)"

# Another caller may have done the work while we waited for the lock.
if command -v docker >/dev/null && answers; then summary; exit 0; fi

# 1. Install Debian's docker.io if the daemon is missing. A docker client may
#    already be at /usr/local/bin/docker; docker.io brings its own in /usr/bin
#    and both talk to the daemon (API version negotiation).
if ! command -v dockerd >/dev/null || ! command -v containerd >/dev/null || ! command -v runc >/dev/null; then
    log "dockerd/containerd/runc missing: installing Debian's docker.io"
    t0=$SECONDS
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null || die "apt-get update failed"
    apt-get install -y -q --no-install-recommends docker.io >/tmp/ensure_docker.apt.log 2>&1 \
        || { tail -20 /tmp/ensure_docker.apt.log >&2; die "apt-get install docker.io failed (log /tmp/ensure_docker.apt.log)"; }
    log "installed docker.io in $((SECONDS - t0))s"
fi
command -v dockerd >/dev/null || die "dockerd still missing after installing docker.io"
command -v docker >/dev/null || die "no docker client on PATH"

# 2. Start dockerd unless one is already running (it may just be slow to answer).
start_dockerd() {  # $@ = extra dockerd args; prints the pid
    mkdir -p "$(dirname "$DOCKERD_LOG")"
    printf '\n==== %s ensure_docker.sh starts: dockerd %s\n' "$(date -u +%FT%TZ)" "$*" >>"$DOCKERD_LOG"
    # setsid + nohup: the daemon outlives this script and its process group.
    # 9>&-: the daemon (and the containerd shims it spawns) must not inherit
    # our lock, or the next caller would wait on it forever.
    setsid nohup dockerd "$@" >>"$DOCKERD_LOG" 2>&1 </dev/null 9>&- &
    echo $!
}

live_dockerd() {  # pid of a live (non-zombie) dockerd, if any
    local p
    for p in $(pgrep -x dockerd || true); do
        if alive "$p"; then echo "$p"; return 0; fi
    done
    return 1
}

if pid="$(live_dockerd)"; then
    log "dockerd already running (pid $pid), waiting up to ${WAIT_SECONDS}s for it to answer"
    if wait_until_answers ""; then summary; exit 0; fi
    die "dockerd (pid $pid) is running but did not answer within ${WAIT_SECONDS}s; see $DOCKERD_LOG"
fi

# A dockerd or containerd killed earlier may linger as a zombie (our PID 1 does
# not always reap) and its pid file then looks alive to the new dockerd:
# "pid file found, ensure docker is not running". Drop pid files of dead ones.
for pidfile in /var/run/docker.pid /var/run/docker/containerd/containerd.pid; do
    if [[ -f "$pidfile" ]]; then
        old="$(cat "$pidfile" 2>/dev/null || true)"
        if [[ -z "$old" ]] || ! alive "$old"; then
            log "removing stale $pidfile (pid ${old:-?} is gone)"
            rm -f "$pidfile"
        fi
    fi
done

args=()
[[ -n "${DOCKER_STORAGE_DRIVER:-}" ]] && args+=(--storage-driver "$DOCKER_STORAGE_DRIVER")
t0=$SECONDS
log_lines_before="$(wc -l <"$DOCKERD_LOG" 2>/dev/null || echo 0)"
pid="$(start_dockerd "${args[@]}")"
log "started dockerd (pid $pid, log $DOCKERD_LOG), waiting up to ${WAIT_SECONDS}s"
rc=0; wait_until_answers "$pid" || rc=$?
if ((rc == 2)); then
    log "dockerd exited early; its log:"
    tail -n +"$((log_lines_before + 1))" "$DOCKERD_LOG" | tail -15 >&2 || true
    # Fall back to vfs only when the storage driver is what failed (vfs sees
    # none of overlay2's images, and is slow).
    if [[ -z "${DOCKER_STORAGE_DRIVER:-}" ]] &&
        tail -n +"$((log_lines_before + 1))" "$DOCKERD_LOG" | grep -qiE 'overlay|graphdriver|storage.driver|driver not supported'; then
        log "storage driver failed: retrying with --storage-driver vfs (slow, but works on any filesystem)"
        pid="$(start_dockerd --storage-driver vfs)"
        rc=0; wait_until_answers "$pid" || rc=$?
    fi
fi
if ((rc != 0)); then
    tail -30 "$DOCKERD_LOG" >&2 || true
    die "dockerd did not answer within ${WAIT_SECONDS}s (rc=$rc); see $DOCKERD_LOG"
fi
log "dockerd answers after $((SECONDS - t0))s"
summary
