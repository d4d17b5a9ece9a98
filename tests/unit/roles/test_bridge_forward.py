"""The bridge_forward_timer script: backend detection, rules, and what it runs."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path
from types import ModuleType

import pytest
from installed_program import install_script
from textfile_samples import samples

SCRIPT = Path(__file__).resolve().parents[3] / "roles" / "bridge_forward_timer" / "files" / "bridge_forward.py"

KUBE_ROUTER_NFT = """*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:KUBE-ROUTER-FORWARD - [0:0]
:KUBE-ROUTER-INPUT - [0:0]
-A FORWARD -j KUBE-ROUTER-FORWARD
COMMIT
"""
DROP = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [12:1008]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
ACCEPT = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
# A chain merely named like FORWARD's policy line must not count.
DROP_LOOKALIKE = "*filter\n:FORWARD ACCEPT [0:0]\n:FORWARD-DROPS - [0:0]\n-A FORWARD -j DROP\nCOMMIT\n"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bridge_forward", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bf = _load()


@pytest.mark.parametrize(
    ("rulesets", "default", "expected"),
    [
        ({"nft": KUBE_ROUTER_NFT, "legacy": DROP}, "nft", ["nft"]),
        ({"nft": DROP, "legacy": KUBE_ROUTER_NFT}, "nft", ["legacy"]),
        ({"nft": KUBE_ROUTER_NFT, "legacy": KUBE_ROUTER_NFT}, "nft", ["nft", "legacy"]),
        ({"nft": ACCEPT, "legacy": DROP}, "nft", ["legacy"]),
        ({"nft": DROP, "legacy": DROP}, "legacy", ["nft", "legacy"]),
        ({"nft": ACCEPT, "legacy": None}, "nft", ["nft"]),
        ({"nft": "", "legacy": None}, "legacy", ["legacy"]),
        ({"nft": ACCEPT, "legacy": ACCEPT}, "legacy", ["legacy"]),
        ({"nft": DROP_LOOKALIKE, "legacy": None}, "nft", ["nft"]),
        ({"nft": DROP_LOOKALIKE, "legacy": DROP}, "nft", ["legacy"]),
        ({"nft": ACCEPT}, None, ["nft"]),
        ({"legacy": DROP}, "nft", ["legacy"]),
        ({}, "nft", []),
    ],
)
def test_choose_backends(rulesets: dict[str, str | None], default: str | None, expected: list[str]) -> None:
    assert bf.choose_backends(rulesets, default) == expected


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("iptables v1.8.9 (nf_tables)\n", "nft"),
        ("iptables v1.8.11 (legacy)\n", "legacy"),
        ("", None),
    ],
)
def test_default_backend(output: str, expected: str | None) -> None:
    assert bf.default_backend(output) == expected


def test_rules_any_bridge() -> None:
    assert bf.rules([]) == [["-m", "physdev", "--physdev-is-bridged", "-j", "ACCEPT"]]


def test_rules_per_bridge() -> None:
    assert bf.rules(["br0", "br1"]) == [
        ["-i", "br0", "-m", "physdev", "--physdev-is-bridged", "-j", "ACCEPT"],
        ["-i", "br1", "-m", "physdev", "--physdev-is-bridged", "-j", "ACCEPT"],
    ]


class FakeIptables:
    """Answers iptables commands from an in-memory FORWARD chain per command."""

    def __init__(self, chains: dict[str, list[list[str]]], fail_insert: bool = False) -> None:
        self.chains = chains
        self.fail_insert = fail_insert
        self.calls: list[list[str]] = []

    def __call__(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv)
        command, op = argv[0], argv[2]
        chain = self.chains.setdefault(command, [])
        if op == "-C":
            return subprocess.CompletedProcess(argv, 0 if argv[4:] in chain else 1, "", "")
        if op == "-I":
            if self.fail_insert:
                return subprocess.CompletedProcess(argv, 4, "", "iptables: Permission denied (you must be root).")
            chain.insert(int(argv[4]) - 1, argv[5:])
        elif op == "-D":
            chain.remove(argv[4:])
        return subprocess.CompletedProcess(argv, 0, "", "")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeIptables:
    fake = FakeIptables({})
    monkeypatch.setattr(bf, "run", fake)
    monkeypatch.setattr(bf, "backends_for", lambda family, override, every=False: ["nft"])
    return fake


def test_inserts_once_and_logs_one_line(fake: FakeIptables, capsys: pytest.CaptureFixture[str]) -> None:
    assert bf.main(["--bridge", "br0"]) == 0
    assert capsys.readouterr().out.count("\n") == 1
    assert fake.chains["iptables-nft"] == [["-i", "br0", "-m", "physdev", "--physdev-is-bridged", "-j", "ACCEPT"]]
    assert bf.main(["--bridge", "br0"]) == 0
    assert capsys.readouterr().out == ""
    assert len(fake.chains["iptables-nft"]) == 1


def test_inserts_at_position_one_with_lock_wait(fake: FakeIptables) -> None:
    bf.main([])
    insert = next(call for call in fake.calls if "-I" in call)
    assert insert[:5] == ["iptables-nft", "-w", "-I", "FORWARD", "1"]


def test_ipv6_uses_ip6tables(fake: FakeIptables) -> None:
    bf.main(["--ipv6"])
    assert set(fake.chains) == {"iptables-nft", "ip6tables-nft"}


def test_remove_deletes_every_copy_then_nothing(fake: FakeIptables, capsys: pytest.CaptureFixture[str]) -> None:
    rule = bf.rules([])[0]
    fake.chains["iptables-nft"] = [rule, ["-j", "DROP"], rule]
    assert bf.main(["--remove"]) == 0
    assert "deleted" in capsys.readouterr().out
    assert fake.chains["iptables-nft"] == [["-j", "DROP"]]
    assert bf.main(["--remove"]) == 0
    assert capsys.readouterr().out == ""


def test_dry_run_changes_nothing(fake: FakeIptables, capsys: pytest.CaptureFixture[str]) -> None:
    assert bf.main(["--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("bridge-forward: would insert at 1: iptables-nft FORWARD")
    assert fake.chains["iptables-nft"] == []
    fake.chains["iptables-nft"] = [bf.rules([])[0]]
    bf.main(["--remove", "--dry-run"])
    assert capsys.readouterr().out.startswith("bridge-forward: would delete:")
    assert len(fake.chains["iptables-nft"]) == 1


def test_failure_names_the_command_status_and_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bf, "run", FakeIptables({}, fail_insert=True))
    monkeypatch.setattr(bf, "backends_for", lambda family, override, every=False: ["legacy"])
    assert bf.main([]) == 1
    err = capsys.readouterr().err
    assert "iptables-legacy -w -I FORWARD 1 -m physdev --physdev-is-bridged -j ACCEPT failed: [4]" in err
    assert "Permission denied" in err


def test_legacy_not_in_use_is_not_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    names = tmp_path / "ip_tables_names"
    names.write_text("nat\n")
    monkeypatch.setitem(bf.LEGACY_TABLES, "ipv4", str(names))
    monkeypatch.setattr(bf.shutil, "which", lambda name: f"/usr/sbin/{name}")
    calls: list[list[str]] = []

    def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, ACCEPT, "")

    monkeypatch.setattr(bf, "run", run)
    assert bf.read_rulesets("ipv4") == {"nft": ACCEPT, "legacy": None}
    assert calls == [["iptables-nft-save", "-t", "filter"]]
    names.write_text("filter\nnat\n")
    assert bf.read_rulesets("ipv4") == {"nft": ACCEPT, "legacy": ACCEPT}


def test_backend_override_must_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bf.shutil, "which", lambda name: None)
    with pytest.raises(bf.CommandError, match="iptables-legacy not found"):
        bf.backends_for("ipv4", "legacy")


def test_removal_acts_on_every_backend_in_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bf, "read_rulesets", lambda family: {"nft": "", "legacy": DROP})
    assert bf.backends_for("ipv4", "auto", every=True) == ["nft", "legacy"]
    monkeypatch.setattr(bf, "read_rulesets", lambda family: {"nft": "", "legacy": None})
    assert bf.backends_for("ipv4", "auto", every=True) == ["nft"]


def installed(tmp_path: Path) -> ModuleType:
    return install_script(tmp_path, SCRIPT, "libvirt-bridge-forward.py")


def test_metrics_count_repairs_across_runs(tmp_path):
    script = installed(tmp_path)
    metrics = tmp_path / "textfile"
    metrics.mkdir()
    script.write_metrics(str(metrics), present=True, repaired=False, now=100)
    script.write_metrics(str(metrics), present=True, repaired=True, now=160)
    script.write_metrics(str(metrics), present=True, repaired=True, now=220)
    script.write_metrics(str(metrics), present=True, repaired=False, now=280)
    seen = samples(metrics / "foundation-runners-bridge.prom")
    assert seen["foundation_runners_bridge_rule_repairs_total"] == 2
    assert seen["foundation_runners_bridge_rule_last_repair_timestamp_seconds"] == 220
    assert seen["foundation_runners_bridge_rule_present"] == 1
    assert seen['foundation_runners_metrics_written_timestamp_seconds{writer="bridge"}'] == 280


def test_main_reports_a_repair_and_a_failure(tmp_path, monkeypatch):
    script = installed(tmp_path)
    metrics = tmp_path / "textfile"
    metrics.mkdir()
    monkeypatch.setattr(script, "backends_for", lambda *a, **k: ["nft"])
    monkeypatch.setattr(script, "ensure", lambda *a: True)
    assert script.main(["--textfile-dir", str(metrics)]) == 0
    assert samples(metrics / "foundation-runners-bridge.prom")["foundation_runners_bridge_rule_repairs_total"] == 1

    def broken(*_args):
        raise script.CommandError("iptables-nft -w -I FORWARD 1 failed: [4] locked")

    monkeypatch.setattr(script, "ensure", broken)
    assert script.main(["--textfile-dir", str(metrics)]) == 1
    seen = samples(metrics / "foundation-runners-bridge.prom")
    assert (
        seen["foundation_runners_bridge_rule_present"] == 0
        and seen["foundation_runners_bridge_rule_repairs_total"] == 1
    )


def test_a_dry_run_writes_no_metrics(tmp_path, monkeypatch):
    script = installed(tmp_path)
    monkeypatch.setattr(script, "backends_for", lambda *a, **k: ["nft"])
    monkeypatch.setattr(script, "ensure", lambda *a: True)
    assert script.main(["--dry-run", "--textfile-dir", str(tmp_path)]) == 0
    assert not (tmp_path / "foundation-runners-bridge.prom").exists()
