#!/bin/sh
# Installs, upgrades and uninstalls edge-infer on a Debian or Raspberry Pi OS gateway from an
# offline bundle (npm run bundle). Nothing is downloaded. Every step says what it did; a second
# run with the same bundle changes nothing and says so.
#
#   sudo ./install.sh [--root DIR] [--no-start] [--keep N] edge-infer-<version>-linux-<arch>.tar.gz
#   sudo ./install.sh uninstall [--purge] [--root DIR]
#
# Paths (under DIR with --root, for a throwaway root or an image being prepared):
#   /opt/edge-infer/versions/<version>   each installed version, unpacked
#   /opt/edge-infer/current              link to the running version (switched atomically)
#   /usr/local/bin/edge-infer            the command, through current
#   /etc/edge-infer/config.yaml          the gateway's config (written once, never overwritten)
#   /etc/edge-infer/node-red-settings.js Node-RED's settings (written once)
#   /var/lib/edge-infer                  the log; models/ (your models), node-red/ (flows)
#   /etc/systemd/system/edge-infer*.service
#
# A new version is unpacked beside the others and checked (it answers --version, loads
# better-sqlite3 and starts an onnxruntime-node session) before `current` moves to it. Anything
# failing before that leaves the previous version current and running; if the service does not
# come up on the new one, `current` moves back and the previous one is started again.
set -eu

PROG=install.sh
USER_NAME=edge-infer
KEEP=3
# How long the service must stay active after a (re)start to count as up.
SETTLE_S=${EDGE_INFER_SETTLE_S:-10}

say() { printf '%s: %s\n' "$PROG" "$*"; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
usage_error() {
  printf '%s: error: %s (usage: %s [--root DIR] [--no-start] [--keep N] <bundle.tar.gz> | uninstall [--purge] [--root DIR])\n' "$PROG" "$1" "$PROG" >&2
  exit 2
}

# ---- command line ---------------------------------------------------------------------------
ACTION=install
ROOT=
NO_START=0
PURGE=0
BUNDLE=
if [ "${1:-}" = uninstall ]; then ACTION=uninstall; shift; fi
while [ $# -gt 0 ]; do
  case "$1" in
    --root)
      [ $# -ge 2 ] && [ -n "$2" ] || usage_error "--root: expected a folder"
      ROOT=$2; shift 2 ;;
    --root=*) ROOT=${1#--root=}; [ -n "$ROOT" ] || usage_error "--root: expected a folder"; shift ;;
    --no-start) [ "$ACTION" = install ] || usage_error "--no-start: only for an install"; NO_START=1; shift ;;
    --purge) [ "$ACTION" = uninstall ] || usage_error "--purge: only for uninstall"; PURGE=1; shift ;;
    --keep)
      [ "$ACTION" = install ] || usage_error "--keep: only for an install"
      case "${2:-}" in ''|*[!0-9]*) usage_error "--keep: expected a whole number of old versions to keep, got '${2:-}'" ;; esac
      KEEP=$2; shift 2 ;;
    -h|--help)
      sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) usage_error "$1: unknown option" ;;
    *)
      [ "$ACTION" = install ] || usage_error "$1: uninstall takes no bundle"
      [ -z "$BUNDLE" ] || usage_error "$1: one bundle at a time (already given: $BUNDLE)"
      BUNDLE=$1; shift ;;
  esac
done

if [ -n "$ROOT" ]; then
  [ -d "$ROOT" ] || die "--root $ROOT: no such folder"
  ROOT=$(cd "$ROOT" && pwd)
  [ "$ROOT" = / ] && ROOT=
fi
OPT=$ROOT/opt/edge-infer
VERSIONS=$OPT/versions
CURRENT=$OPT/current
ETC=$ROOT/etc/edge-infer
DATA=$ROOT/var/lib/edge-infer
UNITS=$ROOT/etc/systemd/system
CLI_LINK=$ROOT/usr/local/bin/edge-infer

# systemctl only for the running system: never for a folder given with --root. EDGE_INFER_SYSTEMCTL
# names a stand-in that is called whatever the root (the tests' service manager, which fails a
# version on purpose to see the switch back).
SYSTEMCTL=${EDGE_INFER_SYSTEMCTL:-systemctl}
systemd_live() {
  [ -n "${EDGE_INFER_SYSTEMCTL:-}" ] && return 0
  [ -z "$ROOT" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1
}

CHANGED=0
changed() { CHANGED=1; say "$*"; }

# ---- the system user ------------------------------------------------------------------------
# Its numeric ids in the target's passwd ("uid:gid"), or nothing.
user_ids() {
  [ -f "$ROOT/etc/passwd" ] || return 0
  awk -F: -v u="$USER_NAME" '$1 == u { print $3 ":" $4 }' "$ROOT/etc/passwd"
}

ensure_user() {
  if [ -n "$(user_ids)" ]; then return 0; fi
  if [ -z "$ROOT" ]; then
    [ "$(id -u)" -eq 0 ] || die "creating the system user $USER_NAME needs root: run with sudo"
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$USER_NAME" || die "useradd $USER_NAME failed"
    changed "system user $USER_NAME created (no login shell, no home)"
  elif [ -f "$ROOT/etc/passwd" ] && [ -f "$ROOT/etc/group" ] && useradd --root "$ROOT" --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$USER_NAME" 2>/dev/null; then
    changed "system user $USER_NAME created in $ROOT/etc/passwd"
  else
    say "--root $ROOT: system user $USER_NAME not created (no $ROOT/etc/passwd to add it to); files stay owned by $(id -un)"
  fi
}

# chown to the service user when it exists in the target (numeric ids: the target's passwd, not this machine's).
own() {
  ids=$(user_ids)
  [ -n "$ids" ] || return 0
  chown -R "$ids" "$@"
}

# ---- reading a bundle -----------------------------------------------------------------------
# A value from bundle.env (key=value lines; read, never sourced).
bundle_value() { sed -n "s/^$2=//p" "$1" | head -n 1; }

machine_arch() {
  case "$(uname -m)" in
    aarch64|arm64) echo arm64 ;;
    x86_64|amd64) echo x64 ;;
    armv7l|armv6l|armhf) echo armhf ;;
    *) uname -m ;;
  esac
}

check_node() {
  NODE=$(command -v node 2>/dev/null) || die "Node.js 20 or newer is needed and 'node' is not on the PATH (Raspberry Pi OS: apt-get install nodejs from NodeSource, or Debian's nodejs if it is 20 or newer)"
  major=$("$NODE" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  [ "$major" -ge 20 ] 2>/dev/null || die "Node.js 20 or newer is needed; $NODE is $("$NODE" --version 2>/dev/null || echo 'not runnable')"
}

# ---- install --------------------------------------------------------------------------------
INCOMING=
cleanup() { [ -z "$INCOMING" ] || rm -rf "$INCOMING"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# Unpacks the bundle into a new folder beside the versions; sets NEW (its top folder), VERSION, ARCH.
unpack() {
  mkdir -p "$VERSIONS"
  INCOMING=$(mktemp -d "$VERSIONS/.incoming.XXXXXX")
  say "unpacking $BUNDLE"
  # -x without -z: tar tells gzip (the bundle) from xz or none itself, should one be recompressed.
  if ! tar -xf "$BUNDLE" -C "$INCOMING" --no-same-owner 2>"$INCOMING/.tar-errors"; then
    die "$BUNDLE: cannot unpack ($(grep -v -e '^tar: Exiting' -e '^ *$' "$INCOMING/.tar-errors" | head -n 1 | sed 's/^tar: //')): truncated or corrupt? Nothing was changed"
  fi
  rm -f "$INCOMING/.tar-errors"
  set -- "$INCOMING"/*
  [ $# -eq 1 ] && [ -d "$1" ] || die "$BUNDLE: expected one top folder in the bundle, found $#; not an edge-infer bundle"
  NEW=$1
  env=$NEW/devices/raspberry-pi/bundle.env
  [ -f "$env" ] || die "$BUNDLE: no devices/raspberry-pi/bundle.env in it; not an edge-infer bundle (make one with npm run bundle)"
  VERSION=$(bundle_value "$env" version)
  ARCH=$(bundle_value "$env" arch)
  case "$VERSION" in ''|*[!0-9A-Za-z.+-]*|.*) die "$env: version '$VERSION' is not a version" ;; esac
}

check_arch() {
  here=$(machine_arch)
  [ "$ARCH" = "$here" ] && return 0
  if [ "$here" = armhf ]; then
    die "$BUNDLE is for linux-$ARCH and this is 32-bit ARM ($(uname -m)): edge-infer needs a 64-bit OS (Raspberry Pi OS 64-bit, Bookworm or newer)"
  fi
  die "$BUNDLE is for linux-$ARCH and this machine is linux-$here; build the bundle with npm run bundle -- --arch $here"
}

# The sha256 of the bundle each version was installed from, to recognise a second run.
installed_from() { [ -f "$VERSIONS/$1/.bundle-sha256" ] && cat "$VERSIONS/$1/.bundle-sha256"; }

current_version() { [ -L "$CURRENT" ] && basename "$(readlink "$CURRENT")"; }

# Points current at versions/$1, atomically: a new link under a temporary name renamed over it.
switch_to() {
  ln -sfn "versions/$1" "$OPT/.current.$$"
  mv -T "$OPT/.current.$$" "$CURRENT"
}

# Copies $1 to $2 unless $2 already has that content; says so when it changes something.
put_file() {
  if [ -f "$2" ] && cmp -s "$1" "$2"; then return 0; fi
  mkdir -p "$(dirname "$2")"
  cp "$1" "$2.new.$$" && chmod "${3:-644}" "$2.new.$$" && mv -f "$2.new.$$" "$2"
  changed "$2 written"
}

install_units() {
  src=$1/devices/raspberry-pi/systemd
  set -- "$src"/*.service
  if [ ! -f "$1" ]; then
    say "no systemd units in this bundle ($src is empty): the service is not set up; run $CURRENT/bin/edge-infer.js run --config $ETC/config.yaml by hand"
    return 0
  fi
  for unit in "$@"; do
    tmp=$(mktemp)
    # The units start /usr/bin/node; Node installed elsewhere (nvm, /usr/local) is rewritten in.
    if [ "$NODE" != /usr/bin/node ]; then sed "s#/usr/bin/node\\b#$NODE#g" "$unit" >"$tmp"; else cp "$unit" "$tmp"; fi
    put_file "$tmp" "$UNITS/$(basename "$unit")" 644
    rm -f "$tmp"
  done
}

# The example models, on the first install only: /var/lib/edge-infer/models is the user's afterwards.
seed_models() {
  mkdir -p "$DATA/models"
  if [ -n "$(ls -A "$DATA/models")" ]; then return 0; fi
  for m in "$1"/models/*/; do
    [ "$(basename "$m")" = build ] && continue
    cp -R "$m" "$DATA/models/"
  done
  changed "$DATA/models: the example models copied in (yours go here)"
}

setup_system() {
  ensure_user
  mkdir -p "$ETC" "$DATA/models" "$DATA/node-red"
  if [ ! -f "$ETC/config.yaml" ]; then
    cp "$1/devices/raspberry-pi/config.yaml" "$ETC/config.yaml"
    chmod 640 "$ETC/config.yaml"
    ids=$(user_ids); [ -z "$ids" ] || chown "0:${ids#*:}" "$ETC/config.yaml"
    changed "$ETC/config.yaml written (the default; edit it, it is never overwritten)"
  fi
  seed_models "$1"
  install_units "$1"
  mkdir -p "$(dirname "$CLI_LINK")"
  # Relative, so the link holds inside an image mounted elsewhere too.
  want=../../../opt/edge-infer/current/bin/edge-infer.js
  if [ "$(readlink "$CLI_LINK" 2>/dev/null)" != "$want" ]; then
    ln -sfn "$want" "$CLI_LINK"
    changed "$CLI_LINK linked to the current version"
  fi
}

setup_node_red() {
  out=$("$NODE" "$CURRENT/devices/raspberry-pi/node-red-dir.js" "$DATA/node-red" "$CURRENT" "$ETC/node-red-settings.js") || die "the Node-RED user folder $DATA/node-red could not be made (see above); edge-infer $VERSION is installed and current"
  [ -z "$out" ] || changed "$out"
  ids=$(user_ids); [ -z "$ids" ] || chown "0:${ids#*:}" "$ETC/node-red-settings.js"
  own "$DATA"
}

# Whether the unit is active now and still after SETTLE_S (a crash loop is active in between).
service_up() {
  i=0
  while [ "$i" -lt "$SETTLE_S" ]; do
    sleep 1
    "$SYSTEMCTL" is-active --quiet "$1" || return 1
    i=$((i + 1))
  done
  "$SYSTEMCTL" is-active --quiet "$1"
}

start_service() {
  [ -f "$UNITS/edge-infer.service" ] || return 0
  "$SYSTEMCTL" daemon-reload
  [ -f "$UNITS/edge-infer-node-red.service" ] && "$SYSTEMCTL" enable --quiet edge-infer-node-red.service
  "$SYSTEMCTL" enable --quiet edge-infer.service
  "$SYSTEMCTL" restart edge-infer.service || true
  if service_up edge-infer.service; then
    say "edge-infer.service is running $VERSION"
    [ -f "$UNITS/edge-infer-node-red.service" ] && { "$SYSTEMCTL" restart edge-infer-node-red.service || say "edge-infer-node-red.service did not start: systemctl status edge-infer-node-red says why"; }
    return 0
  fi
  if [ -n "$PREVIOUS" ] && [ "$PREVIOUS" != "$VERSION" ]; then
    switch_to "$PREVIOUS"
    "$SYSTEMCTL" restart edge-infer.service || true
    die "edge-infer.service did not stay up on $VERSION (journalctl -u edge-infer says why): switched back to $PREVIOUS and restarted it; $VERSION stays in $VERSIONS"
  fi
  die "edge-infer.service did not stay up on $VERSION: journalctl -u edge-infer says why"
}

# Keeps the current version, the one before, and KEEP older ones at most (by install time).
prune_versions() {
  n=0
  for stamp in $(ls -1t "$VERSIONS"/*/.bundle-sha256 2>/dev/null); do
    v=$(basename "$(dirname "$stamp")")
    [ "$v" = "$VERSION" ] && continue
    n=$((n + 1))
    if [ "$n" -gt "$KEEP" ] && [ "$v" != "$PREVIOUS" ]; then
      rm -rf "${VERSIONS:?}/$v"
      changed "old version $v removed (keeping $KEEP)"
    fi
  done
}

do_install() {
  [ -n "$BUNDLE" ] || usage_error "no bundle given"
  [ -f "$BUNDLE" ] || die "$BUNDLE: no such file"
  [ -r "$BUNDLE" ] || die "$BUNDLE: cannot read it"
  [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ] && die "installing into / needs root: sudo $0 $BUNDLE (or --root DIR for a folder)"
  check_node
  PREVIOUS=$(current_version || true)
  sha=$(sha256sum "$BUNDLE" | cut -d' ' -f1)
  # A second run with the same bundle: recognised before anything is unpacked.
  VERSION=
  for stamp in "$VERSIONS"/*/.bundle-sha256; do
    [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sha" ] && VERSION=$(basename "$(dirname "$stamp")")
  done
  if [ -n "$VERSION" ]; then
    say "$BUNDLE is edge-infer $VERSION, installed already"
  else
    unpack
    check_arch
    if [ -d "$VERSIONS/$VERSION" ]; then
      [ "$VERSION" != "$PREVIOUS" ] || die "edge-infer $VERSION is installed and current from another bundle ($(installed_from "$VERSION" | cut -c1-12)…, this one ${sha%"${sha#????????????}"}…): give the new build a new version, or uninstall first"
    fi
    say "checking edge-infer $VERSION before switching to it"
    "$NODE" "$NEW/devices/raspberry-pi/self-check.js" "$NEW" >/dev/null || die "edge-infer $VERSION failed its self-check (above); nothing was changed${PREVIOUS:+, $PREVIOUS stays current}"
    echo "$sha" >"$NEW/.bundle-sha256"
    rm -rf "${VERSIONS:?}/$VERSION"
    mv "$NEW" "$VERSIONS/$VERSION"
    changed "edge-infer $VERSION unpacked into $VERSIONS/$VERSION"
  fi
  setup_system "$VERSIONS/$VERSION"
  if [ "$(current_version || true)" != "$VERSION" ]; then
    switch_to "$VERSION"
    changed "current: $VERSION${PREVIOUS:+ (was $PREVIOUS, kept in $VERSIONS/$PREVIOUS)}"
  fi
  setup_node_red
  prune_versions
  if [ "$NO_START" -eq 1 ]; then
    say "--no-start: the service is not (re)started"
  elif systemd_live; then
    if [ "$CHANGED" -eq 1 ] || ! "$SYSTEMCTL" is-active --quiet edge-infer.service; then start_service; fi
  elif [ -z "$ROOT" ]; then
    say "systemd is not running here: start the gateway with $CLI_LINK run --config $ETC/config.yaml"
  fi
  if [ "$CHANGED" -eq 0 ]; then
    say "edge-infer $VERSION is installed and current; nothing changed"
  else
    say "edge-infer $VERSION installed (linux-$(machine_arch)) in $OPT"
  fi
}

# ---- uninstall ------------------------------------------------------------------------------
do_uninstall() {
  [ -z "$ROOT" ] && [ "$(id -u)" -ne 0 ] && die "uninstalling from / needs root: sudo $0 uninstall"
  removed=0
  for unit in "$UNITS"/edge-infer.service "$UNITS"/edge-infer-node-red.service; do
    [ -f "$unit" ] || continue
    if systemd_live; then "$SYSTEMCTL" disable --now --quiet "$(basename "$unit")" 2>/dev/null || true; fi
    rm -f "$unit"
    say "$unit removed"; removed=1
  done
  if [ "$removed" -eq 1 ] && systemd_live; then "$SYSTEMCTL" daemon-reload; fi
  if [ -L "$CLI_LINK" ]; then rm -f "$CLI_LINK"; say "$CLI_LINK removed"; removed=1; fi
  if [ -d "$OPT" ] || [ -L "$CURRENT" ]; then rm -rf "$OPT"; say "$OPT removed (every version)"; removed=1; fi
  if [ "$PURGE" -eq 1 ]; then
    for d in "$ETC" "$DATA"; do
      if [ -e "$d" ]; then rm -rf "$d"; say "$d removed (--purge)"; removed=1; fi
    done
    if [ -n "$(user_ids)" ]; then
      if [ -z "$ROOT" ]; then userdel "$USER_NAME" && say "system user $USER_NAME removed"; else userdel --root "$ROOT" "$USER_NAME" && say "system user $USER_NAME removed from $ROOT/etc/passwd"; fi
      removed=1
    fi
  else
    for d in "$ETC" "$DATA"; do [ -e "$d" ] && say "$d kept (config and data; uninstall --purge removes them)"; done
  fi
  [ "$removed" -eq 1 ] || say "edge-infer is not installed${ROOT:+ in $ROOT}; nothing to remove"
}

if [ "$ACTION" = uninstall ]; then do_uninstall; else do_install; fi
