"""A job that tries to leave its container, as a malicious workflow would, and reads back what it reached.

The job looks for a container engine socket (/var/run/docker.sock and every socket under /run and /var/run),
asks each one, the default gateway on 2375 and 2376 and any further HOST:PORT it is given (FENCE_REACH) for the
Docker API's /version, and asks for the host's PID namespace, every capability and the engine socket through its
own container options. Any HTTP answer counts as reached; "none" means no connection, "connected" one that gave
no line. It only needs bash and perl-base, which every Debian image has. Each finding is one `FENCE key=value`
line in the job's log.
"""

from __future__ import annotations

import re

# The probe, in bash. ask WHERE: GET /version from a unix socket path or a host:port; the status line or "none".
SCRIPT = r"""set +e +o pipefail  # every probe runs, whatever the one before found
ask() {
  perl -MIO::Socket::UNIX -MIO::Socket::INET -e '
    my $s = $ARGV[0] =~ m{^/} ? IO::Socket::UNIX->new(Peer => $ARGV[0])
                              : IO::Socket::INET->new(PeerAddr => $ARGV[0], Timeout => 3);
    $s or do { print "none\n"; exit 0 };
    print $s "GET /version HTTP/1.0\r\nHost: docker\r\n\r\n";
    my $line = <$s> // "connected\n"; $line =~ s/\r//; print $line;' "$1"
}
echo "FENCE pid1=$(cat /proc/1/comm)"
echo "FENCE capeff=$(awk '/^CapEff/ {print $2}' /proc/self/status)"
echo "FENCE uid=$(id -u)"
sockets=$( (ls -d /var/run/docker.sock 2>/dev/null; find /run /var/run -xdev -type s 2>/dev/null) | sort -u)
echo "FENCE sockets=$(echo $sockets | tr ' ' ,)"
for s in $sockets; do echo "FENCE socket $s answers=$(ask "$s" | tr -d '\n')"; done
hex=$(awk '$2 == "00000000" {print $3; exit}' /proc/net/route)
if [ -n "$hex" ]; then
  gw=$(printf '%d.%d.%d.%d' "0x${hex:6:2}" "0x${hex:4:2}" "0x${hex:2:2}" "0x${hex:0:2}")
  for port in 2375 2376; do echo "FENCE tcp $gw:$port answers=$(ask "$gw:$port" | tr -d '\n')"; done
fi
for target in $FENCE_REACH; do echo "FENCE tcp $target answers=$(ask "$target" | tr -d '\n')"; done
echo "FENCE done"
"""
PROBE = "\n      - name: try to leave the container\n        shell: bash\n        run: |\n" + "".join(
    f"          {line}\n" for line in SCRIPT.splitlines()
)

# Options a workflow may ask for; with privileged off the runner must drop every one of them.
ESCAPE_OPTIONS = (
    "--pid=host --cap-add=ALL --security-opt seccomp=unconfined -v /var/run/docker.sock:/var/run/docker.sock"
)


def probe_workflow(label: str, image: str, escape_options: bool = True, reach: tuple[str, ...] = ()) -> str:
    """A workflow whose one job, on LABEL in IMAGE, runs the probe; with escape_options its container also asks
    for the host's PID namespace, all capabilities, no seccomp and the engine socket; reach adds HOST:PORTs to ask."""
    options = f"      options: {ESCAPE_OPTIONS}\n" if escape_options else ""
    container = f"    container:\n      image: {image}\n{options}"
    env = f'    env:\n      FENCE_REACH: "{" ".join(reach)}"\n' if reach else ""
    return f"on: push\njobs:\n  probe:\n    runs-on: {label}\n{container}{env}    steps:{PROBE}"


def findings(log: str) -> dict[str, object]:
    """What the probe reached: {'pid1', 'capeff', 'uid', 'sockets': [...], 'answered': [where, ...]}."""
    lines = [m.group(1) for m in re.finditer(r"FENCE (.+?)\s*$", log, re.M)]
    assert "done" in lines, f"the probe did not finish:\n{log[-3000:]}"
    facts = dict(line.split("=", 1) for line in lines if "=" in line and " " not in line.split("=", 1)[0])
    answered = [
        line.split(" ")[1]
        for line in lines
        if line.startswith(("socket ", "tcp ")) and line.split("answers=", 1)[1].startswith("HTTP/")
    ]
    return {
        "pid1": facts.get("pid1", ""),
        "capeff": facts.get("capeff", ""),
        "uid": facts.get("uid", ""),
        "sockets": [s for s in facts.get("sockets", "").split(",") if s],
        "answered": answered,
    }


# Docker's default capability set: what a job container has when no option added one.
DOCKER_DEFAULT_CAPS = "00000000a80425fb"


def assert_fenced(found: dict[str, object]) -> None:
    """No engine answered, and the container options that reach past the container were dropped."""
    assert not found["answered"], f"the job reached a container engine: {found}"
    assert "docker.sock" not in ",".join(found["sockets"]), f"the job sees an engine socket: {found}"
    assert found["pid1"] not in ("systemd", "init"), f"the job shares the host's PID namespace: {found}"
    assert found["capeff"] == DOCKER_DEFAULT_CAPS, f"the job holds capabilities beyond docker's default: {found}"
