#!/usr/bin/env bash
# Two "guests" (namespaces bftg1, bftg2) on the bridge brbft0 of this host.
#   guests.sh up          creates them (idempotent)
#   guests.sh ping        one ping from bftg1 to bftg2 (exit status tells)
#   guests.sh wait MAX    pings every second until one answers; prints the seconds taken
set -euo pipefail
BRIDGE=brbft0

up() {
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  ip link set "$BRIDGE" up
  local i
  for i in 1 2; do
    ip netns list | grep -qw "bftg$i" || ip netns add "bftg$i"
    if ! ip link show "bftv$i" >/dev/null 2>&1; then
      ip link add "bftv$i" type veth peer name eth0 netns "bftg$i"
    fi
    ip link set "bftv$i" master "$BRIDGE" up
    ip -n "bftg$i" link set lo up
    ip -n "bftg$i" addr replace "10.77.0.$i/24" dev eth0
    ip -n "bftg$i" link set eth0 up
  done
}

ping_once() { ip netns exec bftg1 ping -c 1 -W 1 10.77.0.2 >/dev/null 2>&1; }

ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

wait_ping() {
  local max_ms=$(($1 * 1000)) start elapsed
  start=$(ms)
  while true; do
    elapsed=$(($(ms) - start))
    if ping_once; then
      printf '%d.%d\n' $((elapsed / 1000)) $((elapsed % 1000 / 100))
      return 0
    fi
    if ((elapsed > max_ms)); then
      echo "no answer within $1 s" >&2
      return 1
    fi
    sleep 0.5
  done
}

case "${1:-}" in
  up) up ;;
  ping) ping_once ;;
  wait) wait_ping "${2:?seconds}" ;;
  *) sed -n '2,5p' "$0"; exit 2 ;;
esac
