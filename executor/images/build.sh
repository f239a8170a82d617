#!/usr/bin/env bash
# Build the executor's run image offline from Debian's packages (no image
# registry needed): debootstrap a minimal bookworm, install python3,
# python3-pytest and nodejs, add the unprivileged user 'runner' (uid 10001)
# and /work, strip docs and caches, then `docker import` it.
#
# Idempotent:
#   - if the image already exists with the same recipe (label
#     org.opencode-live.recipe), nothing is done;
#   - the finished root filesystem is cached as a tarball under
#     $CACHE_DIR, so after `docker rmi` a rebuild is only a `docker import`;
#   - debootstrap's .debs are cached too ($CACHE_DIR/debs).
# Needs root. Calls ensure_docker.sh first (installs/starts Docker if needed).
#
# Usage: executor/images/build.sh            # build or reuse
#        FORCE=1 executor/images/build.sh    # ignore the image and the tarball
#
# Environment:
#   IMAGE_TAG   image to produce (default opencode-live/runner:1)
#   SUITE       Debian suite (default bookworm)
#   MIRROR      Debian mirror (default: the one this machine's apt uses)
#   SECURITY_MIRROR  mirror for $SUITE-security (default: from apt, or none)
#   CACHE_DIR   default /var/cache/opencode-live
#   FORCE=1     rebuild from scratch
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
IMAGE_TAG="${IMAGE_TAG:-opencode-live/runner:1}"
SUITE="${SUITE:-bookworm}"
CACHE_DIR="${CACHE_DIR:-/var/cache/opencode-live}"
FORCE="${FORCE:-0}"
RUNNER_UID=10001
PACKAGES="python3 python3-pytest nodejs"
# Bump RECIPE_REV whenever what this script puts in the image changes; the
# image label and the cached tarball's name derive from it.
RECIPE_REV=2
RECIPE="rev=$RECIPE_REV suite=$SUITE uid=$RUNNER_UID packages=$PACKAGES"
RECIPE_HASH="$(printf '%s' "$RECIPE" | sha256sum | cut -c1-12)"
TARBALL="$CACHE_DIR/images/$(printf '%s' "$IMAGE_TAG" | tr '/:' '__')-$RECIPE_HASH.tar"

log() { printf '[build] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
T_START=$SECONDS
T_STEP=$SECONDS
step_done() { log "step '$1' took $((SECONDS - T_STEP))s"; T_STEP=$SECONDS; }

[[ "$(id -u)" -eq 0 ]] || die "must run as root (debootstrap, chroot, docker); running as uid $(id -u)"

"$HERE/ensure_docker.sh" >/dev/null
step_done "ensure docker"

# --- reuse --------------------------------------------------------------------
exit_if_current() {
    local have
    [[ "$FORCE" != 1 ]] || return 0
    have="$(docker image inspect --format '{{index .Config.Labels "org.opencode-live.recipe"}}' "$IMAGE_TAG" 2>/dev/null)" || return 0
    if [[ "$have" == "$RECIPE_HASH" ]]; then
        log "image $IMAGE_TAG exists (recipe $RECIPE_HASH): nothing to do"
        exit 0
    fi
    log "image $IMAGE_TAG exists with recipe '${have}', want $RECIPE_HASH: rebuilding"
}
exit_if_current

mkdir -p "$CACHE_DIR/images" "$CACHE_DIR/debs"
exec 9>"$CACHE_DIR/build.lock"
flock -w 1800 9 || die "another build.sh holds $CACHE_DIR/build.lock"
exit_if_current   # a concurrent build.sh may have finished while we waited

# --- root filesystem (cached tarball) ---------------------------------------
# first deb URI whose suite is exactly $1, from this machine's apt sources
apt_uri_for_suite() {
    local suite="$1" f
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f "$f" ]] || continue
        awk -v want="$suite" 'BEGIN{RS=""; FS="\n"}
            {
              types=""; uris=""; suites=""; enabled="yes"
              for (i = 1; i <= NF; i++) {
                line = $i; sub(/^[ \t]+/, "", line)
                if (line ~ /^#/) continue
                k = tolower(line); sub(/:.*/, "", k)
                v = line; sub(/^[^:]*:[ \t]*/, "", v)
                if (k == "types") types = v
                else if (k == "uris") uris = v
                else if (k == "suites") suites = v
                else if (k == "enabled") enabled = tolower(v)
              }
              if (enabled == "no") next
              if ((" " types " ") !~ / deb /) next
              n = split(suites, s, /[ \t]+/)
              for (j = 1; j <= n; j++) if (s[j] == want) { split(uris, u, /[ \t]+/); print u[1]; exit }
            }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f "$f" ]] || continue
        # deb [opts] URI SUITE COMPONENTS...
        sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk -v want="$suite" '$1 == "deb" && $3 == want { print $2 }'
    done
}

build_rootfs() {
    local mirror security root
    mirror="${MIRROR:-$(apt_uri_for_suite "$SUITE" | head -1)}"
    mirror="${mirror:-http://deb.debian.org/debian}"
    security="${SECURITY_MIRROR-$(apt_uri_for_suite "$SUITE-security" | head -1)}"
    log "mirror $mirror, security mirror ${security:-none}"

    if ! command -v debootstrap >/dev/null; then
        log "installing debootstrap"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >/dev/null 2>&1 \
            || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >/dev/null; } \
            || die "cannot install debootstrap"
        step_done "install debootstrap"
    fi

    root="$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")"
    # shellcheck disable=SC2064
    trap "umount -l '$root/proc' 2>/dev/null || true; rm -rf --one-file-system '$root'" EXIT

    local keyring=()
    [[ -f /usr/share/keyrings/debian-archive-keyring.gpg ]] && keyring=(--keyring /usr/share/keyrings/debian-archive-keyring.gpg)
    debootstrap --variant=minbase --cache-dir="$CACHE_DIR/debs" "${keyring[@]}" \
        "$SUITE" "$root" "$mirror" >"$CACHE_DIR/debootstrap.log" 2>&1 \
        || { tail -20 "$CACHE_DIR/debootstrap.log" >&2; die "debootstrap failed (log $CACHE_DIR/debootstrap.log)"; }
    step_done "debootstrap minbase $SUITE"

    # no docs/manpages/locales from now on
    cat >"$root/etc/dpkg/dpkg.cfg.d/01-opencode-live-nodoc" <<'EOF'
path-exclude=/usr/share/doc/*
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-exclude=/usr/share/lintian/*
path-exclude=/usr/share/linda/*
EOF
    cat >"$root/etc/apt/apt.conf.d/01-opencode-live" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
APT::Sandbox::User "root";
EOF
    {
        echo "deb $mirror $SUITE main"
        echo "deb $mirror $SUITE-updates main"
        [[ -n "$security" ]] && echo "deb $security $SUITE-security main"
    } >"$root/etc/apt/sources.list"
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"; chmod +x "$root/usr/sbin/policy-rc.d"
    cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

    mount -t proc proc "$root/proc"
    chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 \
        sh -ec "apt-get update -q; apt-get -y -q -o Dpkg::Options::=--force-confold upgrade; apt-get install -y -q $PACKAGES" \
        >"$CACHE_DIR/chroot-apt.log" 2>&1 \
        || { tail -20 "$CACHE_DIR/chroot-apt.log" >&2; die "installing $PACKAGES in the chroot failed (log $CACHE_DIR/chroot-apt.log)"; }
    step_done "apt-get install $PACKAGES (+ $SUITE-updates/security upgrades)"

    chroot "$root" groupadd -g "$RUNNER_UID" runner
    chroot "$root" useradd -u "$RUNNER_UID" -g "$RUNNER_UID" -M -d /work -s /bin/sh runner
    mkdir -p "$root/work"
    # 1777: a `--tmpfs /work:mode=1777` mounted over an existing directory takes
    # the directory's mode (and root ownership), not the mode= option (Docker
    # 20.10 / runc 1.1 here), so the directory itself must be 1777.
    chown "$RUNNER_UID:$RUNNER_UID" "$root/work"; chmod 1777 "$root/work"
    chmod 1777 "$root/tmp"
    umount "$root/proc"

    # shrink: no docs, apt lists, caches, logs; no setuid/setgid programs
    rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
        "$root"/usr/share/locale/* "$root"/usr/share/lintian "$root"/usr/share/linda \
        "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
        "$root"/var/lib/dpkg/*-old "$root"/usr/sbin/policy-rc.d "$root"/root/.cache
    find "$root/var/log" -type f -delete
    : >"$root/etc/resolv.conf"   # docker bind-mounts its own
    find "$root" -xdev -type f -perm /6000 -exec chmod ug-s {} +
    printf 'opencode-live runner image, recipe %s (%s), built %s\n' "$RECIPE_HASH" "$RECIPE" "$(date -u +%FT%TZ)" \
        >"$root/etc/opencode-live-image"
    step_done "user, /work, trim"

    tar --numeric-owner --xattrs -C "$root" -cf "$TARBALL.tmp" . \
        && mv -f "$TARBALL.tmp" "$TARBALL"
    log "root filesystem: $(du -sh --apparent-size "$TARBALL" | cut -f1) in $TARBALL"
    step_done "tar root filesystem"
    rm -rf --one-file-system "$root"
    trap - EXIT
}

if [[ "$FORCE" == 1 || ! -s "$TARBALL" ]]; then
    rm -f "$CACHE_DIR"/images/"$(printf '%s' "$IMAGE_TAG" | tr '/:' '__')"-*.tar  # stale recipes
    build_rootfs
else
    log "reusing cached root filesystem $TARBALL"
fi

# --- import -------------------------------------------------------------------
old_id="$(docker image inspect --format '{{.Id}}' "$IMAGE_TAG" 2>/dev/null || true)"
docker import \
    --change "USER $RUNNER_UID" \
    --change 'WORKDIR /work' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PYTHONDONTWRITEBYTECODE=1' \
    --change 'ENV PYTHONUNBUFFERED=1' \
    --change "LABEL org.opencode-live.recipe=$RECIPE_HASH" \
    --change 'CMD ["sleep", "infinity"]' \
    --message "opencode-live runner, recipe $RECIPE_HASH" \
    "$TARBALL" "$IMAGE_TAG" >/dev/null
new_id="$(docker image inspect --format '{{.Id}}' "$IMAGE_TAG")"
if [[ -n "$old_id" && "$old_id" != "$new_id" ]]; then
    # the replaced image is now untagged; drop it unless a container still uses it
    docker rmi "$old_id" >/dev/null 2>&1 || log "old image $old_id kept (in use)"
fi
step_done "docker import"

# --- smoke test -----------------------------------------------------------------
out="$(docker run --rm --network none "$IMAGE_TAG" sh -c \
    'echo "uid=$(id -u) pwd=$(pwd) $(python3 --version) pytest $(python3 -m pytest --version 2>&1 | tr -d "\n") node $(node --version)"')" \
    || die "smoke test of $IMAGE_TAG failed"
log "smoke test: $out"
step_done "smoke test"
log "image $IMAGE_TAG ready ($(docker image inspect --format '{{.Size}}' "$IMAGE_TAG" | awk '{printf "%.0f MB", $1/1e6}')), total $((SECONDS - T_START))s"
