# shellcheck shell=bash
# Sourced by the lab commands; LAB_NAME names the command in its messages.
#   log MSG...             a message on stderr
#   die MSG...             that message, then exit 1
#   alive PIDFILE          the process in PIDFILE runs
#   ns_exists NAME         network namespace NAME exists
#   state_lock FILE WAIT   holds FILE's lock (descriptor 9) until the command ends, waiting up to WAIT seconds
log() { echo "${LAB_NAME:-lab}: $*" >&2; }
die() { log "$*"; exit 1; }
alive() { [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
ns_exists() { [[ -e "/run/netns/$1" ]]; }
state_lock() {
  install -d -m 0755 "$(dirname "$1")"
  exec 9>"$1"
  flock -w "$2" 9 || die "another $LAB_NAME command holds $1"
}
