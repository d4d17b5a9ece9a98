#!/usr/bin/env bash
# ansible-test sanity, offline: the collection is copied to an ansible_collections/ tree (ansible-test needs
# that layout), and ansible-test's pip bootstrap script is replaced by a stand-in that runs pip from the
# pip wheel taken from PyPI (the script's own download host is not reachable).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
pip_version=$("$here/.venv/bin/python" -c 'from ansible_test._internal.python_requirements import PIP_VERSION; print(PIP_VERSION)' 2>/dev/null || echo 24.2)
cache=~/.ansible/test/cache
script="$cache/get_pip_${pip_version//./_}.py"
if [[ ! -f "$script" ]]; then
  mkdir -p "$cache"
  "$here/.venv/bin/pip" download -q --no-deps -d "$cache" "pip==$pip_version"
  cat >"$script" <<PY
"""Stand-in for get-pip.py: installs pip from the wheel fetched from PyPI."""
import os, subprocess, sys
wheel = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pip-${pip_version}-py3-none-any.whl")
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, os.path.join(wheel, "pip"), "install", *args]))
PY
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/foundation/runners"
mkdir -p "$dest"
git -C "$here" ls-files -co --exclude-standard -z | (cd "$here" && xargs -0 cp --parents -t "$dest")
cd "$dest"
git init -q && git add -A
"$here/.venv/bin/ansible-test" sanity --venv --python 3.11 --color no "$@"
