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

stamp=.venv/.requirements.sha
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [[ ! -x .venv/bin/python || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  echo "bootstrap: pip install -r requirements.txt"
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r requirements.txt
  echo "$want" >"$stamp"
fi

# The collection is used in place: .ansible/collections/ansible_collections/foundation/runners -> repo.
mkdir -p .ansible/collections/ansible_collections/foundation
ln -sfn ../../../.. .ansible/collections/ansible_collections/foundation/runners
