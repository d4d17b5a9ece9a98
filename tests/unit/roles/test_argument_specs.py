"""Every role's meta/argument_specs.yml (all its entry points together) mirrors its defaults/main.yml key for key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROLES_DIR = Path(__file__).resolve().parents[3] / "roles"
ROLES = sorted(p.name for p in ROLES_DIR.iterdir() if (p / "tasks").is_dir()) if ROLES_DIR.is_dir() else []

# argument_specs type -> Python types a default of that type may have.
TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "path": (str,),
    "raw": (object,),
    "bool": (bool,),
    "int": (int,),
    "float": (float, int),
    "list": (list,),
    "dict": (dict,),
}


def _load(path: Path) -> Any:
    with path.open(encoding="utf-8") as stream:
        return yaml.safe_load(stream)


def _defaults(role: str) -> dict[str, Any]:
    path = ROLES_DIR / role / "defaults" / "main.yml"
    return (_load(path) or {}) if path.is_file() else {}


def _options(role: str) -> dict[str, Any]:
    path = ROLES_DIR / role / "meta" / "argument_specs.yml"
    assert path.is_file(), f"{role}: meta/argument_specs.yml is missing"
    specs = _load(path) or {}
    entry_points = specs.get("argument_specs", {})
    assert "main" in entry_points, f"{role}: meta/argument_specs.yml has no argument_specs.main"
    # A role with several entry points (tasks_from) declares each default in one of them.
    options: dict[str, Any] = {}
    for entry_point in entry_points.values():
        options.update((entry_point or {}).get("options") or {})
    return options


def test_roles_found() -> None:
    assert ROLES, f"no roles under {ROLES_DIR}"


@pytest.mark.parametrize("role", ROLES)
def test_same_keys(role: str) -> None:
    defaults = set(_defaults(role))
    options = set(_options(role))
    only_defaults = sorted(defaults - options)
    only_specs = sorted(options - defaults)
    assert not only_defaults, f"{role}: in defaults/main.yml but not in argument_specs: {only_defaults}"
    assert not only_specs, f"{role}: in argument_specs but not in defaults/main.yml: {only_specs}"


@pytest.mark.parametrize("role", ROLES)
def test_same_defaults(role: str) -> None:
    defaults = _defaults(role)
    for name, option in _options(role).items():
        if name not in defaults:
            continue
        want = defaults[name]
        assert "default" in option, f"{role}: {name} has no default in argument_specs (defaults/main.yml: {want!r})"
        got = option["default"]
        assert got == want, f"{role}: {name} defaults differ: argument_specs {got!r}, defaults/main.yml {want!r}"


@pytest.mark.parametrize("role", ROLES)
def test_defaults_match_types(role: str) -> None:
    for name, option in _options(role).items():
        assert option.get("description"), f"{role}: {name} has no description"
        kind = option.get("type", "str")
        default = option.get("default")
        if default is None or kind not in TYPES:
            continue
        if isinstance(default, str) and "{{" in default:
            continue  # a template resolves at run time
        if kind in ("int", "float"):
            assert not isinstance(default, bool), f"{role}: {name} is {kind} but defaults to a bool"
        assert isinstance(default, TYPES[kind]), f"{role}: {name} is {kind} but defaults to {default!r}"
        if kind == "list" and "elements" in option and option["elements"] in TYPES:
            elements = option["elements"]
            for item in default:
                assert isinstance(item, TYPES[elements]), f"{role}: {name} element {item!r} is not {elements}"
