"""A role's Python program as the role installs it, run by a Python without Ansible (the managed host's)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import yaml

ROOT = Path(__file__).resolve().parents[2]


def run_installed(tmp_path: Path, role: str, sources: str, entry: str, *args: str, **values: str):
    """Copy the module_utils the role's vars list under `sources` into lib/, render the entry template `entry` with
    its shebang and managed line blanked and `values` (variable name -> text), and run it with python3 -I."""
    role_dir = ROOT / "roles" / role
    role_vars = yaml.safe_load((role_dir / "vars" / "main.yml").read_text())
    lib = tmp_path / "lib"
    utils = lib / "ansible_collections" / "foundation" / "runners" / "plugins" / "module_utils"
    utils.mkdir(parents=True)
    for source in role_vars[sources]:
        shutil.copy(ROOT / "plugins" / "module_utils" / source, utils / source)
    text = (role_dir / "templates" / entry).read_text().replace("{{ ansible_managed | comment }}", "")
    for name, value in {**values, "lib": str(lib)}.items():
        text = text.replace("{{ __%s_%s }}" % (role, name), value)
    text = text.replace("{{ __%s_shebang }}" % role, "")
    program = tmp_path / "program"
    program.write_text(text)
    python = shutil.which("python3", path="/usr/bin") or sys.executable
    no_ansible = subprocess.run([python, "-I", "-c", "import ansible"], capture_output=True, check=False)
    assert no_ansible.returncode != 0, f"{python} has Ansible; the test needs a Python without it"
    return subprocess.run([python, "-I", str(program), *args], capture_output=True, text=True, check=False)


def install_script(tmp_path: Path, script: Path, name: str) -> ModuleType:
    """A role's script installed as NAME with the collection's textfile writer beside it, as the roles install them,
    and loaded."""
    (tmp_path / "bin").mkdir()
    installed = tmp_path / "bin" / name
    installed.write_text(script.read_text())
    helper = ROOT / "plugins" / "module_utils" / "_metrics_textfile.py"
    (tmp_path / "bin" / "foundation_runners_textfile.py").write_text(helper.read_text())
    spec = importlib.util.spec_from_file_location(name.replace("-", "_").removesuffix(".py"), installed)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
