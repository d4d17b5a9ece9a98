"""The collection's IPv4 tests, as the fenced_runner preflight uses them."""

from __future__ import annotations

import pytest

from ansible_collections.foundation.runners.plugins.test.ipv4 import (
    in_any_network,
    in_ipv4_subnet,
    ip_network,
    ipv4_cidr,
)


@pytest.mark.parametrize("value", ["192.168.1.16/24", "192.168.1.0/24", "10.0.0.1/32", "0.0.0.0/0"])
def test_ipv4_cidr_accepts(value):
    assert ipv4_cidr(value)


@pytest.mark.parametrize(
    "value", ["192.168.1.16", "192.168.1.300/24", "192.168.1.16/33", "192.168.1.16/", "fd00::1/64", "", None, 24]
)
def test_ipv4_cidr_refuses(value):
    assert not ipv4_cidr(value)


@pytest.mark.parametrize(
    ("value", "subnet", "inside"),
    [
        ("192.168.1.16/24", "192.168.1.0/24", True),
        ("192.168.1.16/16", "192.168.1.0/24", False),  # another prefix: another subnet
        ("10.0.0.16/24", "192.168.1.0/24", False),
        ("192.168.1.1", "192.168.1.0/24", True),  # a bare address, such as a gateway
        ("192.168.2.1", "192.168.1.0/24", False),
        ("192.168.1.255", "192.168.1.0/24", True),
        ("192.168.1.16/24", "", False),  # no subnet known
        ("not-an-address", "192.168.1.0/24", False),
        ("192.168.1.16/24", "192.168.1.7/24", True),  # a subnet given with host bits
    ],
)
def test_in_ipv4_subnet(value, subnet, inside):
    assert in_ipv4_subnet(value, subnet) is inside


@pytest.mark.parametrize("value", ["192.0.2.5", "192.0.2.0/24", "2001:db8::/32", "::1", "0.0.0.0/0"])
def test_ip_network_accepts(value):
    assert ip_network(value)


@pytest.mark.parametrize("value", ["192.0.2.5/24", "any", "localhost", " 192.0.2.5", "192.0.2.300", "", None, 5])
def test_ip_network_refuses(value):
    """Host bits set, systemd's words, padding and non-addresses are refused."""
    assert not ip_network(value)


@pytest.mark.parametrize(
    ("value", "networks", "inside"),
    [
        ("192.0.2.5", ["198.51.100.0/24", "192.0.2.0/28"], True),
        ("192.0.2.5", ["192.0.2.5"], True),
        ("192.0.2.50", ["192.0.2.0/28"], False),
        ("192.0.2.5", ["not-a-network", "192.0.2.5/24"], False),  # entries that are not networks count for nothing
        ("resolver.example", ["192.0.2.0/24"], False),
        ("192.0.2.5", [], False),
    ],
)
def test_in_any_network(value, networks, inside):
    assert in_any_network(value, networks) is inside
