"""The shipped alerting rules load in Prometheus, and promtool's unit tests of every rule pass."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

MONITORING = Path(__file__).resolve().parents[3] / "monitoring"
RULES = MONITORING / "foundation-runners.rules.yml"
RULE_TESTS = MONITORING / "foundation-runners.rules.test.yml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: tools/bootstrap.sh installs Debian's prometheus package, which holds it"
    return subprocess.run([tool, *args], capture_output=True, text=True, check=False, cwd=MONITORING)


def test_the_rules_load():
    result = promtool("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass():
    result = promtool("test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test():
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    tested = {case["alertname"] for test in tests for case in test.get("alert_rule_test", []) if case["exp_alerts"]}
    assert alerts == tested, f"alerts without a test that fires them: {sorted(alerts - tested)}"
