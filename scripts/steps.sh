# Named steps for the course's scripts, sourced after `set -euo pipefail`:
#   . scripts/steps.sh
#   step "building convlab" "what to do when it fails"
#   ...
#   finish
# No script exits without saying where and why: a failing command stops the script with the
# step, the file, the line, the command and what to do. Each step prints its minutes when it
# ends ("[setup] building convlab: done in 5m12s"), which scripts/cold-start.sh collects.
# shellcheck shell=bash

SCRIPT_NAME="${SCRIPT_NAME:-$(basename "$0")}"
STEP=""
STEP_HINT=""
STEP_T0=$SECONDS

log() { printf '\033[1m[%s]\033[0m %s\n' "${SCRIPT_NAME%.sh}" "$*"; }

# 75 -> "1m15s"
minutes() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# Ends the running step (printing its time) and starts the next one.
step() {
  finish
  STEP="$1"
  STEP_HINT="${2:-}"
  STEP_T0=$SECONDS
  log "$STEP ..."
}

finish() {
  if [ -n "$STEP" ]; then
    log "$STEP: done in $(minutes $((SECONDS - STEP_T0)))"
  fi
  STEP=""
}

# A check that failed: says what to do and stops (no trap noise).
die() {
  printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2
  exit 1
}

on_error() {
  local status=$1 file=$2 line=$3 command=$4
  trap - ERR
  printf '\n%s: failed' "$SCRIPT_NAME" >&2
  [ -n "$STEP" ] && printf ' during "%s"' "$STEP" >&2
  printf ' (exit status %s)\n  at %s line %s: %s\n' "$status" "$file" "$line" "$command" >&2
  if [ -n "$STEP_HINT" ]; then
    printf 'What to do: %s\n' "$STEP_HINT" >&2
  else
    printf 'What to do: read the messages above; they name what failed.\n' >&2
  fi
  printf 'Then run the same command again: what is already installed is kept.\n' >&2
  exit "$status"
}
set -E
trap 'on_error "$?" "${BASH_SOURCE[0]}" "$LINENO" "$BASH_COMMAND"' ERR

# Runs a command that can be silent for minutes, printing a line each minute meanwhile.
with_heartbeat() {
  local parent=$$ t0=$SECONDS
  # The heartbeat holds no lock of the caller's (fds 8 and 9) and takes its sleep down with it,
  # so a lock is free as soon as the step ends.
  (s=
   trap 'kill "$s" 2>/dev/null; exit 0' TERM
   while sleep 60 & s=$!; wait "$s" && kill -0 "$parent" 2>/dev/null; do
     log "  ... $STEP: still working ($(minutes $((SECONDS - t0))))"
   done) 8>&- 9>&- &
  local beat=$! status=0
  "$@" || status=$?
  kill "$beat" 2>/dev/null || true
  wait "$beat" 2>/dev/null || true
  return "$status"
}

# Debian packages the course needs: installed when running as root with apt-get, otherwise
# the script stops and names the command to run.
#   need_packages "why" COMMAND-CHECK PACKAGE...
need_packages() {
  local why=$1 check=$2
  shift 2
  eval "$check" >/dev/null 2>&1 && return 0
  apt_install_as_root "$why" "$@"
  eval "$check" >/dev/null 2>&1 && return 0
  die "$why; install them, e.g.
  sudo apt-get install $*
then run the same command again."
}

# Packages that help but are not needed: installed as root, else only a note.
#   want_packages "what they give" COMMAND-CHECK PACKAGE...
want_packages() {
  local why=$1 check=$2
  shift 2
  eval "$check" >/dev/null 2>&1 && return 0
  apt_install_as_root "$why" "$@"
  eval "$check" >/dev/null 2>&1 || log "note: without $* $why; 'apt-get install $*' gives it"
}

# apt-get install, when this is root on a machine with apt-get; quiet otherwise.
apt_install_as_root() {
  local why=$1
  shift
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || return 0
  log "installing $* (apt-get): $why"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >/dev/null; then
    log "note: apt-get could not install $*"
  fi
}
