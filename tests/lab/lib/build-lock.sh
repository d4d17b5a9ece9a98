# shellcheck shell=bash
# Sourced by the lab's build scripts.
# build_lock FILE: holds the lock on FILE (descriptor 7) until the script ends, so that a second build of the
# same artefact waits for the first and then finds it cached.
build_lock() {
  mkdir -p "$(dirname "$1")"
  exec 7>"$1"
  flock 7
}
