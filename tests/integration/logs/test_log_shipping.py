"""log_shipping's rsyslog configuration with real rsyslogd (Debian's), in lab namespaces: a sender with the role's
sender file, the relay on Graylog's host with the role's relay file (RELP in), and a stand-in for Graylog's syslog
TCP input beside it. The relay host down for a minute, or Graylog's input behind it: every line written meanwhile
arrives once the hop is back, exactly once, in RFC 5424 with the host and the program as fields; a program not listed is
not shipped. The sender restarted during the outage: the known limit of rsyslog 8.2302, measured."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from lablib.shell import LAB, sh, wait_until

SENDER, SENDER_IP = "logtx", "198.51.100.75"
RECEIVER, RECEIVER_IP = "logrx", "198.51.100.74"
PORT = 2514
GRAYLOG_PORT = 11514
# Graylog's syslog TCP input, as far as the relay can tell: the lab receiver's own stand-in.
GRAYLOG_CONF = """\
global(workDirectory="{dir}/spool")
""" + (LAB / "logs.d" / "graylog-input.conf").read_text().replace("{", "{{").replace("}", "}}").replace(
    "@DIR@", "{dir}"
).replace("@PORT@", "{graylog}")
RELAY_CONF = """\
global(workDirectory="{dir}/spool")
include(file="{dir}/foundation-runners-relay.conf")
"""
SENDER_CONF = """\
global(workDirectory="{dir}/spool" localHostname="lab-sender")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{dir}/log.sock" CreatePath="on")
include(file="{dir}/foundation-runners.conf")
"""


class Rsyslogd:
    """One rsyslogd in the foreground, in lab namespace frlab-NAME, with its own configuration and state."""

    def __init__(self, name: str, ip: str, directory: Path, conf: str):
        self.name, self.dir = name, directory
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "spool").mkdir(exist_ok=True)
        sh(str(LAB / "net"), "host", name, ip)
        (self.dir / "rsyslog.conf").write_text(conf.format(dir=self.dir, graylog=GRAYLOG_PORT))
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        argv = ["nsenter", f"--net=/run/netns/frlab-{self.name}", "rsyslogd", "-n", "-i", str(self.dir / "pid")]
        argv += ["-f", str(self.dir / "rsyslog.conf")]
        log = (self.dir / "rsyslogd.log").open("a")
        self.proc = subprocess.Popen(argv, stdout=log, stderr=log)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.proc = None


def render(directory: Path, template: str, **variables) -> None:
    """One of the role's templates, rendered by Ansible with the role's defaults and these variables."""
    sh(str(LAB / "logs"), "render", template, str(directory / template.removesuffix(".j2")), json.dumps(variables))


@pytest.fixture
def hosts(tmp_path):
    """The sender, the relay (brix02's rsyslog) and Graylog's input beside it."""
    sender_dir, relay_dir = tmp_path / "sender", tmp_path / "relay"
    for directory in (sender_dir, relay_dir):
        directory.mkdir()
    render(sender_dir, "foundation-runners.conf.j2", log_shipping_target=RECEIVER_IP, log_shipping_port=PORT)
    render(
        relay_dir, "foundation-runners-relay.conf.j2", log_shipping_port=PORT, log_shipping_graylog_port=GRAYLOG_PORT
    )
    graylog = Rsyslogd(RECEIVER, RECEIVER_IP, tmp_path / "graylog", GRAYLOG_CONF)
    relay = Rsyslogd(RECEIVER, RECEIVER_IP, relay_dir, RELAY_CONF)
    sender = Rsyslogd(SENDER, SENDER_IP, sender_dir, SENDER_CONF)
    yield sender, relay, graylog
    for daemon in (sender, relay, graylog):
        daemon.stop()


def write(sender: Rsyslogd, program: str, text: str) -> None:
    sh("logger", "--socket", str(sender.dir / "log.sock"), "-t", program, text)


def received(receiver: Rsyslogd) -> list[str]:
    path = receiver.dir / "received.log"
    return path.read_text().splitlines() if path.exists() else []


def outage(sender: Rsyslogd, down: Rsyslogd, seconds: int, restart_sender: bool = False) -> list[str]:
    """Stops ``down``, writes a line every 2 s for ``seconds`` (the sender restarted halfway if asked), starts it
    again; returns the lines written."""
    down.stop()
    lines = [f"during the outage {i}" for i in range(seconds // 2)]
    for i, text in enumerate(lines):
        write(sender, program(i), text)
        if restart_sender and i == len(lines) // 2:
            sender.stop()
            sender.start()
            wait_until((sender.dir / "log.sock").exists, 30)
        time.sleep(2)
    down.start()
    return lines


def program(i: int) -> str:
    return "foundation-runner-watchdog" if i % 2 else "forgejo-runner"


def arrived(got: list[str], lines: list[str]) -> dict[str, int]:
    """How often each line arrived, in RFC 5424 with the sender's host name and the program as fields, and the
    relay's origin element naming the address it came from."""
    origin = rf'\[origin ip="{re.escape(SENDER_IP)}"\]'
    return {
        text: sum(bool(re.fullmatch(rf"lab-sender {program(i)} {origin} +{text}", line)) for line in got)
        for i, text in enumerate(lines)
    }


def started(hosts) -> tuple[Rsyslogd, Rsyslogd, Rsyslogd]:
    sender, relay, graylog = hosts
    for daemon in (graylog, relay, sender):
        daemon.start()
    wait_until((sender.dir / "log.sock").exists, 30)
    write(sender, "forgejo-runner", "before the outage")
    write(sender, "sshd", "not a runner line")
    wait_until(lambda: any("before the outage" in line for line in received(graylog)), 60)
    return sender, relay, graylog


def caught_up(graylog: Rsyslogd, lines: list[str], least: int) -> float:
    back = time.monotonic()
    try:
        wait_until(lambda: sum(n > 0 for n in arrived(received(graylog), lines).values()) >= least, 120, step=1)
    except AssertionError:
        counts = arrived(received(graylog), lines)
        pytest.fail(f"fewer than {least} of {len(lines)} lines reached Graylog's input within 120 s: {counts}")
    time.sleep(3)  # a duplicate would follow at once
    return time.monotonic() - back


@pytest.mark.parametrize("down_name, seconds", [("relay", 60), ("graylog", 30)])
def test_every_line_written_while_a_hop_is_down_arrives_once(hosts, down_name, seconds):
    """The relay host (brix02's rsyslog) down for a minute, or Graylog's input behind it down for half a minute."""
    sender, relay, graylog = started(hosts)
    lines = outage(sender, relay if down_name == "relay" else graylog, seconds)
    took = caught_up(graylog, lines, len(lines))
    got = received(graylog)
    counts = arrived(got, lines)
    assert all(n == 1 for n in counts.values()), counts
    assert not any("not a runner line" in line for line in got)
    print(f"{down_name} down {seconds} s: {len(lines)} lines written meanwhile arrived once each, {took:.0f} s after")


def test_a_sender_restart_during_the_outage_keeps_the_queue(hosts):
    """The relay down and the sender's rsyslog restarted meanwhile (a reboot, a configuration change): the queue,
    saved on disk, is sent once the relay is back. rsyslog 8.2302 loses the one line its suspended action held when
    it stopped and sends the next one twice (roles/log_shipping/README.md, known limit); this measures that."""
    sender, relay, graylog = started(hosts)
    lines = outage(sender, relay, 30, restart_sender=True)
    took = caught_up(graylog, lines, len(lines) - 1)
    counts = arrived(received(graylog), lines)
    lost = [text for text, n in counts.items() if n == 0]
    twice = [text for text, n in counts.items() if n > 1]
    assert len(lost) <= 1 and lost in ([], [lines[0]]), counts
    got = len(lines) - len(lost)
    print(f"relay down 30 s, sender restarted: {got} of {len(lines)} arrived {took:.0f} s after", end="; ")
    print(f"lost {lost}, twice {twice}")
