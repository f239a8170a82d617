#!/usr/bin/env bash
# Probe which sandbox flags work with this Docker Engine and the run image, and
# time cold `docker run` and warm `docker exec`. Prints a table; exit 0 even if
# some probes fail (the table says which), non-zero only if Docker or the image
# is missing. Read-only towards the machine, apart from the short-lived
# containers it starts (all named opencode-live-probe-*, removed at the end).
#
# Usage: executor/images/probe.sh [image]      (default opencode-live/runner:1)
#        RUNS=10 executor/images/probe.sh      (timing repetitions)
# shellcheck disable=SC2016  # the $(...) are meant for the container's shell
set -uo pipefail

IMG="${1:-${IMAGE_TAG:-opencode-live/runner:1}}"
RUNS="${RUNS:-10}"
PFX="opencode-live-probe-$$"
docker info >/dev/null 2>&1 || { echo "docker does not answer (run ensure_docker.sh)" >&2; exit 1; }
docker image inspect "$IMG" >/dev/null 2>&1 || { echo "no image $IMG (run build.sh)" >&2; exit 1; }
cleanup() { docker ps -aq --filter "name=$PFX" | xargs -r docker rm -f >/dev/null 2>&1; }
trap cleanup EXIT

PASS=0; FAIL=0
row() {  # name, ok|FAIL, detail
    printf '| %-44s | %-4s | %s |\n' "$1" "$2" "$3"
    if [[ "$2" == ok ]]; then PASS=$((PASS + 1)); else FAIL=$((FAIL + 1)); fi
}
# check NAME EXPECTED_REGEX docker-run-args... -- command...
check() {
    local name="$1" want="$2"; shift 2
    local out rc
    out="$(docker run --rm "$@" 2>&1)"; rc=$?
    out="$(printf '%s' "$out" | tr '\n\t' '  ' | sed 's/  */ /g; s/|/\//g' | cut -c1-150)"
    if [[ "rc=$rc $out" =~ $want ]]; then row "$name" ok "rc=$rc $out"; else row "$name" FAIL "rc=$rc $out"; fi
}

echo "## Engine"
docker info --format '- server {{.ServerVersion}}, storage {{.Driver}}, cgroup v{{.CgroupVersion}} driver {{.CgroupDriver}}, runtime {{.DefaultRuntime}}, init binary {{.InitBinary}}, security {{json .SecurityOptions}}'
docker info --format '{{range .Warnings}}- warning: {{.}}{{"\n"}}{{end}}'
echo "- image $IMG: $(docker image inspect --format '{{.Size}} bytes, user {{.Config.User}}, workdir {{.Config.WorkingDir}}' "$IMG")"
echo
echo "## Sandbox flags"
echo "| flag | ok? | evidence |"
echo "| --- | --- | --- |"
check "(no flags) python3 runs as 10001" 'rc=0 uid=10001 hello' "$IMG" sh -c 'echo uid=$(id -u) $(python3 -c "print(\"hello\")")'
check "--memory 256m (limit visible)" 'rc=0 268435456' --memory 256m "$IMG" sh -c 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max'
check "--memory 256m (600 MB alloc is OOM-killed)" 'rc=137' --memory 256m --memory-swap 256m "$IMG" python3 -c 'b = bytearray(600 * 2**20); print("survived")'
check "--memory-swap = --memory (memsw limit set)" 'rc=0 (268435456|0)' --memory 256m --memory-swap 256m "$IMG" sh -c 'cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.swap.max'
check "--cpus 1 (cfs quota)" 'rc=0 100000 100000' --cpus 1 "$IMG" sh -c 'cat /sys/fs/cgroup/cpu.max 2>/dev/null || echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)'
check "--cpus 0.5 (cfs quota)" 'rc=0 50000 100000' --cpus 0.5 "$IMG" sh -c 'cat /sys/fs/cgroup/cpu.max 2>/dev/null || echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)'
check "--pids-limit 32 (fork past it fails)" 'rc=0 .*max=32 .*blocked' --pids-limit 32 "$IMG" python3 -c '
import os, time
p = "/sys/fs/cgroup/pids/pids.max"
print("max=" + open(p if os.path.exists(p) else "/sys/fs/cgroup/pids.max").read().strip())
kids = []
try:
    for i in range(100):
        pid = os.fork()
        if pid == 0:
            time.sleep(5); os._exit(0)
        kids.append(pid)
    print("not blocked", len(kids))
except OSError as e:
    print("blocked after", len(kids), e)
for k in kids: os.kill(k, 9)
'
check "--read-only (rootfs not writable)" 'rc=0 .*Read-only file system' --read-only "$IMG" sh -c 'touch /etc/x 2>&1; touch /work/x 2>&1; true'
check "--tmpfs /work (no mode; image dir is 1777)" 'rc=0 1777 hi' --read-only --tmpfs /work:size=100m "$IMG" sh -c 'stat -c "%a" /work; echo hi > /work/a && cat /work/a'
check "--tmpfs /work:size=100m,mode=1777" 'rc=0 .*1777 .*ENOSPC-ok' --read-only --tmpfs /work:size=100m,mode=1777 "$IMG" sh -c 'stat -c "%a" /work; echo hi > /work/a && cat /work/a; python3 -c "
try:
    open(\"/work/big\", \"wb\").write(b\"x\" * 150 * 2**20); print(\"wrote 150MB\")
except OSError as e: print(\"ENOSPC-ok\", e.errno)"'
check "--tmpfs /work is noexec by default" 'rc=0 .*noexec' --read-only --tmpfs /work:size=100m,mode=1777 "$IMG" sh -c 'grep " /work " /proc/mounts; printf "#!/bin/sh\necho ran\n" > /work/s; chmod +x /work/s; /work/s 2>&1; true'
check "--tmpfs /work:...,exec allows executables" 'rc=0 ran' --read-only --tmpfs /work:size=100m,mode=1777,exec "$IMG" sh -c 'printf "#!/bin/sh\necho ran\n" > /work/s; chmod +x /work/s; /work/s 2>&1'
check "--tmpfs /tmp:size=64m,mode=1777" 'rc=0 ok' --read-only --tmpfs /tmp:size=64m,mode=1777 "$IMG" sh -c 'echo x > /tmp/a && echo ok'
check "--tmpfs /dev/shm:size=16m,mode=1777" 'rc=0 .*16384k' --read-only --tmpfs /dev/shm:size=16m,mode=1777 "$IMG" sh -c 'echo x > /dev/shm/a && grep /dev/shm /proc/mounts'
check "--shm-size 16m (alternative)" 'rc=0 .*16384k' --read-only --shm-size 16m "$IMG" sh -c 'echo x > /dev/shm/a && grep /dev/shm /proc/mounts'
check "--network none (only lo)" 'rc=0 lo $' --network none "$IMG" sh -c 'ls /sys/class/net | tr "\n" " "'
check "--cap-drop ALL (root in container: CapEff 0)" 'rc=0 CapEff: 0000000000000000 .*Operation not permitted' --cap-drop ALL --user 0:0 "$IMG" sh -c 'grep CapEff /proc/self/status; chown 1:1 /work 2>&1; true'
check "--security-opt no-new-privileges" 'rc=0 NoNewPrivs: 1' --security-opt no-new-privileges "$IMG" grep NoNewPrivs /proc/self/status
check "default seccomp profile active" 'rc=0 Seccomp: 2' "$IMG" grep '^Seccomp:' /proc/self/status
check "seccomp blocks unshare(CLONE_NEWUSER)" 'rc=0 .*(denied|not permitted)' "$IMG" python3 -c '
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
r = libc.unshare(0x10000000)
print("unshare", r, os.strerror(ctypes.get_errno()) if r else "allowed")'
check "--user 65534:65534" 'rc=0 65534:65534' --user 65534:65534 "$IMG" sh -c 'echo $(id -u):$(id -g)'
check "--user 10001:10001 (image default)" 'rc=0 10001:10001' --user 10001:10001 "$IMG" sh -c 'echo $(id -u):$(id -g)'
check "--log-driver none (attached output still streams)" 'rc=0 hello' --log-driver none "$IMG" python3 -c 'print("hello")'
check "--init (docker-init/tini as PID 1)" 'rc=0 .*(tini|docker-init)' --init "$IMG" sh -c 'cat /proc/1/cmdline | tr "\0" " "'
check "--ulimit nofile=256 / nproc" 'rc=0 256' --ulimit nofile=256:256 "$IMG" sh -c 'ulimit -n'
check "all flags together: node + pytest in /work" 'rc=0 .*passed' \
    --network none --cap-drop ALL --security-opt no-new-privileges --read-only \
    --tmpfs /work:size=100m,mode=1777 --tmpfs /tmp:size=64m,mode=1777 --tmpfs /dev/shm:size=16m,mode=1777 \
    --memory 256m --memory-swap 256m --cpus 1 --pids-limit 64 --user 10001:10001 --log-driver none --init \
    "$IMG" sh -c 'cd /work && printf "def test_a():\n    assert 1 + 1 == 2\n" > test_a.py && node -e "console.log(\"node\", process.version)" && python3 -m pytest -q -p no:cacheprovider 2>&1 | tail -1'

# docker logs with log-driver none must fail: record the error text
cid="$(docker run -d --name "$PFX-logs" --log-driver none "$IMG" sh -c 'echo hi')"
sleep 1
out="$(docker logs "$cid" 2>&1 | head -1)"
row "--log-driver none: docker logs refuses (expected)" "$([[ "$out" == *"does not support reading"* || "$out" == *"configured logging driver does not support"* ]] && echo ok || echo FAIL)" "$out"
docker rm -f "$cid" >/dev/null 2>&1

# --- PID 1, kill -9 -1, zombies, copying files in, OOM inside exec ----------
# shellcheck disable=SC2054  # commas are tmpfs options
SANDBOX=(--network none --cap-drop ALL --security-opt no-new-privileges --read-only
    --tmpfs /work:size=100m,mode=1777 --tmpfs /tmp:size=64m,mode=1777 --tmpfs /dev/shm:size=16m,mode=1777
    --memory 256m --memory-swap 256m --cpus 1 --pids-limit 64 --log-driver none)
procs() { docker top "$1" -o pid,user,args 2>/dev/null | tail -n +2 | awk '{$1=""; $0=$0; $1=$1; print}' | paste -sd ';' -; }
states() { docker exec "$1" sh -c 'for p in /proc/[0-9]*; do cut -d" " -f3 $p/stat 2>/dev/null; done' | sort | uniq -c | awk '{printf "%s%s ", $2, $1}'; }
for variant in "no-init:" "init:--init" "init-65534:--init --user 65534:65534"; do
    v="${variant%%:*}"; read -r -a extra <<<"${variant#*:}"
    c="$PFX-kill-$v"
    docker run -d --name "$c" "${SANDBOX[@]}" "${extra[@]}" "$IMG" sleep infinity >/dev/null
    docker exec -d --user 10001 "$c" sleep 1000; docker exec -d --user 10001 "$c" sh -c 'sleep 2000'
    sleep 0.3
    docker exec --user 10001 "$c" sh -c 'kill -9 -1' >/dev/null 2>&1
    sleep 0.5
    st="$(docker inspect -f '{{.State.Status}}/{{.State.ExitCode}}' "$c")"
    row "PID1=sleep ($v): uid 10001 runs kill -9 -1" ok "container $st; left: $(procs "$c")"
    if [[ "$st" == running* ]]; then
        for _ in 1 2 3 4 5; do docker exec --user 10001 "$c" sh -c '(sleep 0.1 &); true'; done
        sleep 0.5
        row "orphans reaped? ($v; 5 orphaned sleeps)" ok "process states: $(states "$c")"
    fi
    docker rm -f "$c" >/dev/null
done
c="$PFX-copy"
docker run -d --name "$c" "${SANDBOX[@]}" --init --user 65534:65534 "$IMG" sleep infinity >/dev/null
printf 'print("copied")\n' >"/tmp/$PFX.py"
out="$(docker cp "/tmp/$PFX.py" "$c:/work/m.py" 2>&1)"; rc=$?
row "docker cp into --read-only container (/work tmpfs)" "$([[ $rc != 0 ]] && echo ok || echo FAIL)" "rc=$rc (expected to fail) $out"
out="$(tar -C /tmp -cf - "$PFX.py" | docker exec -i --user 10001 "$c" tar -x -C /work 2>&1 && docker exec --user 10001 "$c" python3 "/work/$PFX.py" 2>&1)"; rc=$?
row "tar -c ... / docker exec -i C tar -x -C /work" "$([[ $rc == 0 && $out == copied ]] && echo ok || echo FAIL)" "rc=$rc $out"
rm -f "/tmp/$PFX.py"
docker exec --user 10001 "$c" python3 -c 'b = bytearray(600 * 2**20)' >/dev/null 2>&1; rc=$?
row "OOM inside docker exec (256m, alloc 600 MB)" "$([[ $rc == 137 ]] && echo ok || echo FAIL)" "exec rc=$rc; container $(docker inspect -f '{{.State.Status}} OOMKilled={{.State.OOMKilled}}' "$c"); cgroup $(docker exec "$c" sh -c 'grep -h oom_kill /sys/fs/cgroup/memory/memory.oom_control /sys/fs/cgroup/memory.events 2>/dev/null' | tr '\n' ' ')"
docker rm -f "$c" >/dev/null

echo
echo "flags: $PASS ok, $FAIL failed"

echo
echo "## Timing (median of $RUNS)"
median() { sort -n | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }
ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N); echo $(((t1 - t0) / 1000000)); }

cold_plain=$(for _ in $(seq "$RUNS"); do ms docker run --rm "$IMG" python3 -c 'print("hello")'; done | median)
cold_sandbox=$(for _ in $(seq "$RUNS"); do ms docker run --rm "${SANDBOX[@]}" "$IMG" python3 -c 'print("hello")'; done | median)
echo "- cold \`docker run --rm IMG python3 -c 'print(\"hello\")'\`: ${cold_plain} ms"
echo "- cold, with the sandbox flags: ${cold_sandbox} ms"
docker run -d --name "$PFX-warm" "${SANDBOX[@]}" --init --user 65534:65534 "$IMG" sleep infinity >/dev/null
warm=$(for _ in $(seq "$RUNS"); do ms docker exec --user 10001 "$PFX-warm" python3 -c 'print(1)'; done | median)
warm_true=$(for _ in $(seq "$RUNS"); do ms docker exec --user 10001 "$PFX-warm" true; done | median)
echo "- warm \`docker exec C python3 -c 'print(1)'\` (CLI): ${warm} ms; \`docker exec C true\`: ${warm_true} ms"
py=$(python3 -c 'import docker' 2>/dev/null && echo python3)
if [[ -n "$py" ]]; then
    "$py" - "$PFX-warm" "$RUNS" <<'EOF'
import statistics, sys, time
import docker
c = docker.from_env(version="auto").containers.get(sys.argv[1])
api = c.client.api
n = int(sys.argv[2])
def once(cmd):
    t = time.perf_counter()
    ex = api.exec_create(c.id, cmd, user="10001", stdout=True, stderr=True)
    out = b"".join(api.exec_start(ex["Id"], stream=True))
    rc = api.exec_inspect(ex["Id"])["ExitCode"]
    assert rc == 0 and out.strip() in (b"1", b""), (rc, out)
    return (time.perf_counter() - t) * 1000
once(["true"])
print(f"- warm exec via Python docker SDK {docker.__version__} (exec_create + exec_start(stream) + exec_inspect): "
      f"python3 -c 'print(1)' {statistics.median(once(['python3', '-c', 'print(1)']) for _ in range(n)):.0f} ms; "
      f"true {statistics.median(once(['true']) for _ in range(n)):.0f} ms")
EOF
else
    echo "- Python docker SDK not installed (pip install docker): skipped"
fi
