# Copyright: foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import ipaddress

DOCUMENTATION = r"""
name: ipv4_cidr
short_description: Whether a value is an IPv4 address with its prefix, such as 192.168.1.16/24
version_added: 0.3.0
description:
  - True for a string of an IPv4 address, a slash and a prefix length from 0 to 32. Host bits may be set, so
    both a guest's address (C(192.168.1.16/24)) and a subnet (C(192.168.1.0/24)) pass.
  - The other tests of this file. C(foundation.runners.in_ipv4_subnet) is True when an address (with or without
    its prefix) lies in a subnet; with a prefix, the prefix must also be the subnet's.
    C(foundation.runners.ip_network) is True for an IPv4 or IPv6 address or network (C(192.0.2.5),
    C(192.0.2.0/24), C(2001:db8::/32)), host bits unset, as systemd's C(IPAddressAllow=) takes them.
    C(foundation.runners.in_any_network) is True when an address lies in one of a list of such networks (entries
    that are not networks are passed over).
extends_documentation_fragment:
  - foundation.runners.jinja_test
"""

EXAMPLES = r"""
- name: Check a runner VM's address against its bridge's subnet
  ansible.builtin.assert:
    that:
      - "'192.168.1.16/24' is foundation.runners.ipv4_cidr"
      - "'192.168.1.16/24' is foundation.runners.in_ipv4_subnet('192.168.1.0/24')"
      - "'192.168.1.1' is foundation.runners.in_ipv4_subnet('192.168.1.0/24')"
      - "'192.168.1.0/24' is foundation.runners.ip_network"
      - "'192.168.1.1' is foundation.runners.in_any_network(['10.0.0.0/8', '192.168.1.0/24'])"
"""

RETURN = r"""
_value:
  description: Whether the value passes.
  type: bool
"""


def _interface(value: object) -> ipaddress.IPv4Interface | None:
    if not isinstance(value, str) or "/" not in value:
        return None
    address, _sep, prefix = value.partition("/")
    if not prefix.isdigit():
        return None
    try:
        return ipaddress.IPv4Interface(f"{address}/{int(prefix)}")
    except ValueError:
        return None


def ipv4_cidr(value: object) -> bool:
    return _interface(value) is not None


def in_ipv4_subnet(value: object, subnet: object) -> bool:
    network = _interface(subnet)
    if network is None or not isinstance(value, str):
        return False
    if "/" in value:
        interface = _interface(value)
        return interface is not None and interface.network == network.network
    try:
        return ipaddress.IPv4Address(value) in network.network
    except ValueError:
        return False


def ip_network(value: object) -> bool:
    if not isinstance(value, str) or value != value.strip():
        return False
    try:
        ipaddress.ip_network(value)
    except ValueError:
        return False
    return True


def in_any_network(value: object, networks: object) -> bool:
    try:
        address = ipaddress.ip_address(str(value).split("/", maxsplit=1)[0])
    except ValueError:
        return False
    return any(ip_network(n) and address in ipaddress.ip_network(n) for n in networks or [] if isinstance(n, str))


class TestModule:
    def tests(self) -> dict[str, object]:
        return {
            "ipv4_cidr": ipv4_cidr,
            "in_ipv4_subnet": in_ipv4_subnet,
            "ip_network": ip_network,
            "in_any_network": in_any_network,
        }
