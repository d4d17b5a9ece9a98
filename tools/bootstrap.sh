#!/usr/bin/env bash
# Installs what the lab and the tests need: Debian packages, a Python venv, and
# the collection linked where Ansible finds it. Safe to re-run; each step is skipped
# when already done.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

APT_PACKAGES=(
  # the venv, and headers for libvirt-python's build when python3 is Debian's own
  python3-venv python3-dev
  # virtualisation lab
  qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-clients libvirt-dev virtinst
  dnsmasq-base pkg-config gcc
  # guest image, seeds, systemd containers
  mmdebstrap e2fsprogs fdisk extlinux syslinux-common xorriso systemd-container
  # networking lab
  iproute2 iptables bridge-utils netcat-openbsd openssh-client openssh-server iputils-ping
  # forge lab
  sqlite3 git curl jq
  # container jobs of the lab runner (dockerd started by tests/lab/docker)
  docker.io
  # Kubernetes lab (certificates; kine's SQLite driver is built with cgo and gcc)
  openssl
  # lint of the lab scripts
  shellcheck
  # promtool for the unit tests of monitoring/'s alerting rules; Prometheus and node_exporter for the lab
  # (tests/lab/prometheus starts them; the packages' own services are not used)
  prometheus prometheus-node-exporter
  # rsyslogd with RELP for the logs test (make test-logs starts its own instances)
  rsyslog rsyslog-relp
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "bootstrap: apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The venv is built once per requirements.txt and Python, in the build cache outside the clone (a venv cannot move:
# its scripts name its path), and each clone links it as .venv. A venv without its stamp is unfinished and is rebuilt.
want=$(cat requirements.txt <(python3 -VV) | sha256sum | cut -c1-16)
venv=${FR_CACHE:-$HOME/.cache/foundation-runners}/venv/$want
mkdir -p "${venv%/*}"
(
  flock 9
  if [[ ! -f $venv/.complete ]]; then
    echo "bootstrap: pip install -r requirements.txt into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    "$venv/bin/pip" install -q -r requirements.txt
    touch "$venv/.complete"
  fi
) 9>"$venv.lock"
if [[ "$(readlink .venv 2>/dev/null)" != "$venv" ]]; then
  [[ -L .venv || ! -e .venv ]] || rm -rf .venv  # a venv an older bootstrap built in the clone
  ln -sfn "$venv" .venv
fi

# The collection is used in place: .ansible/collections/ansible_collections/foundation/runners -> repo.
mkdir -p .ansible/collections/ansible_collections/foundation
ln -sfn ../../../.. .ansible/collections/ansible_collections/foundation/runners
