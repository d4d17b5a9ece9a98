"""What a guest that is root can do to its LAN neighbours: send from an address not its own, and claim
another host's address by gratuitous ARP. Used against guests with and without a libvirt network filter.

``guest(script)`` runs a shell script as root in the guest and returns its stdout; each of ``victims`` is the
command prefix that runs a command on a LAN host whose ARP table is watched (``[]`` for the controller, or
``["ip", "netns", "exec", NS]``)."""

from __future__ import annotations

import shlex
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

# Gratuitous ARP requests and replies claiming ADDRESS for this NIC's MAC, for about four seconds, as an attacker
# keeps poisoning (the address's owner may win an entry back in between).
_GARP = r"""
import socket, struct, sys, time
ifname, claim = sys.argv[1], socket.inet_aton(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifname, 0))
mac, bcast = s.getsockname()[4], b"\xff" * 6
for i in range(20):
    op = 1 + i % 2
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, mac, claim, bcast if op == 2 else bytes(6), claim)
    s.send(bcast + mac + b"\x08\x06" + arp)
    time.sleep(0.2)
"""


@dataclass
class Spoof:
    own_address_reaches: bool  # the control: the guest reaches the target from its own address
    spoofed_source_reaches: bool  # the target answers packets sent from another address of the subnet
    arp_claim_taken: bool  # a victim's ARP entry for the claimed address now names the guest's MAC
    guest_mac: str
    taken_where: str = ""  # the victim and its entry, when the claim was taken

    @property
    def blocked(self) -> bool:
        return self.own_address_reaches and not self.spoofed_source_reaches and not self.arp_claim_taken

    @property
    def worked(self) -> bool:
        return self.spoofed_source_reaches and self.arp_claim_taken


def try_spoofing(
    guest: Callable[[str], str], target: str, spoof_address: str, claim: str, victims: list[list[str]]
) -> Spoof:
    """From the guest: reach ``target`` from its own address and from ``spoof_address`` (added to its NIC for the
    try, then removed), then claim ``claim`` by gratuitous ARP while the victims (the target among them) hold an
    ARP entry for it; their tables are watched while the claims go out. Their entries for both addresses are
    flushed before and after, so an earlier try does not blur this one and a claim that worked does not last."""
    _flush(victims, spoof_address, claim)
    t, s = shlex.quote(target), shlex.quote(spoof_address)
    out = guest(
        f"dev=$(ip -o route get {t} | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p')\n"
        f"own=no; ping -c2 -W2 {t} >/dev/null 2>&1 && own=yes\n"
        f'ip addr add {s}/32 dev "$dev"\n'
        f"spoofed=no; ping -c2 -W2 -I {s} {t} >/dev/null 2>&1 && spoofed=yes\n"
        f'ip addr del {s}/32 dev "$dev"\n'
        f'echo "own=$own spoofed=$spoofed dev=$dev mac=$(cat /sys/class/net/$dev/address)"\n'
    )
    fields = dict(item.split("=", 1) for item in out.split()[-4:])
    mac = fields["mac"].lower()
    for victim in victims:
        subprocess.run([*victim, "ping", "-c1", "-W2", claim], capture_output=True, check=False)
    claims = threading.Thread(
        target=guest, args=(f"python3 -c {shlex.quote(_GARP)} {fields['dev']} {shlex.quote(claim)}",)
    )
    claims.start()
    taken = ""
    while claims.is_alive() and not taken:
        for victim in victims:
            entry = _neighbour(victim, claim)
            if mac in entry.lower():
                taken = f"{' '.join(victim) or 'controller'}: {entry.strip()} at {time.strftime('%H:%M:%S')}"
        time.sleep(0.1)
    claims.join()
    # The claims reach every host on the LAN, those of other test parts too: an entry they updated would send
    # their replies to the guest until it ages out (a runner lost a task that way), so each one is flushed.
    _flush([*victims, *(host for host in _lab_hosts() if host not in victims)], spoof_address, claim)
    return Spoof(
        own_address_reaches=fields["own"] == "yes",
        spoofed_source_reaches=fields["spoofed"] == "yes",
        arp_claim_taken=bool(taken),
        guest_mac=mac,
        taken_where=taken,
    )


def _neighbour(victim: list[str], ip: str) -> str:
    return subprocess.run([*victim, "ip", "neigh", "show", "to", ip], capture_output=True, text=True, check=True).stdout


def _lab_hosts() -> list[list[str]]:
    """The controller and every lab namespace (frlab-*), as command prefixes."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    names = [line.split(maxsplit=1)[0] for line in listed.splitlines() if line.startswith("frlab-")]
    return [[], *(["ip", "netns", "exec", name] for name in names)]


def _flush(victims: list[list[str]], *addresses: str) -> None:
    for victim in victims:
        for address in addresses:
            subprocess.run([*victim, "ip", "neigh", "flush", "to", address], capture_output=True, check=False)
