"""The Forgejo client's connections: keep-alive reuse, a connection the server closed while idle, proxies."""

from __future__ import annotations

import http.client
import socket
import threading

import pytest
from fake_forgejo import ADMIN_TOKEN, FakeForgejo

from ansible_collections.foundation.runners.plugins.module_utils._forgejo_client import ForgejoClient, Scope
from ansible_collections.foundation.runners.plugins.module_utils._forgejo_http import ConnectionPool, proxy_for

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


@pytest.fixture
def one_answer_per_connection():
    """A server that answers one request on each connection, promises keep-alive, and then hangs up."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def serve():
        while True:
            try:
                conn, _addr = listener.accept()
            except OSError:
                return
            accepted.append(conn)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            conn.sendall(ANSWER)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    listener.close()


def test_a_connection_closed_while_idle_is_replaced_for_a_repeatable_request(one_answer_per_connection):
    url, accepted = one_answer_per_connection
    pool = ConnectionPool(url, True, 5)
    assert pool.send("GET", "/a", {}, None, replay=True).body == b"{}"
    assert pool.send("DELETE", "/b", {}, None, replay=True).status == 200
    assert len(accepted) == 2


def test_a_connection_closed_while_idle_fails_a_request_that_must_not_be_sent_twice(one_answer_per_connection):
    url, _accepted = one_answer_per_connection
    pool = ConnectionPool(url, True, 5)
    pool.send("GET", "/a", {}, None, replay=True)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
        pool.send("POST", "/b", {}, b"{}", replay=False)


def test_requests_share_one_kept_alive_connection(forge):
    forge.online_first = True
    for index in range(120):
        forge.add_runner(f"r-{index}")
    client = ForgejoClient(
        {"api_url": forge.url, "api_token": ADMIN_TOKEN, "allow_insecure_http": True, "timeout": 5, "retries": 0}
        | {"validate_certs": True}
    )
    assert len(client.list_runners(Scope("instance"))) == 120
    assert client.online_runners(Scope("instance")) == []
    assert forge.connections == 1 and len(forge.requests) == 5


def test_plain_http_goes_through_the_proxy_the_environment_names(forge, monkeypatch):
    """The fake forge stands in for the proxy: it is sent the absolute URL and answers it."""
    for name in ("no_proxy", "NO_PROXY", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", forge.url)
    forge.add_runner("through-proxy")
    args = {"api_url": "http://forge.invalid:3000", "api_token": ADMIN_TOKEN, "validate_certs": True}
    args["allow_insecure_http"] = True
    client = ForgejoClient({**args, "timeout": 5, "retries": 0})
    assert [r["name"] for r in client.list_runners(Scope("instance"))] == ["through-proxy"]


def test_proxy_from_the_environment_with_credentials_and_exceptions(monkeypatch):
    monkeypatch.setenv("https_proxy", "http://fleet:p%40ss@proxy.example.org:3128")
    monkeypatch.setenv("no_proxy", "forge.internal")
    host, port, headers = proxy_for("https", "forge.example.org")
    assert (host, port, headers) == ("proxy.example.org", 3128, {"Proxy-Authorization": "Basic ZmxlZXQ6cEBzcw=="})
    assert proxy_for("https", "forge.internal") is None


def test_fake_server_is_kept_alive():
    """Guard for the tests above: the fake forge answers HTTP/1.1 with keep-alive, as real forges do."""
    fake = FakeForgejo()
    fake.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", int(fake.url.rsplit(":", 1)[1]))
        for path in ("/api/v1/version", "/api/v1/version"):
            conn.request("GET", path)
            assert conn.getresponse().read()
        assert fake.connections == 1
    finally:
        fake.stop()
