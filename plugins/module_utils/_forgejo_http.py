# Private to foundation.runners: not a public API, may change without notice.
# Copyright: (c) foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Persistent HTTP(S) connections for the Forgejo client: keep-alive, certificate checks, proxies."""

from __future__ import annotations

import base64
import http.client
import ssl
import threading
import typing as t
from urllib.parse import unquote, urlsplit
from urllib.request import getproxies, proxy_bypass

# A reused keep-alive connection that the server closed while idle fails with one of these before any answer.
STALE_CONNECTION = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    BrokenPipeError,
    ssl.SSLEOFError,
    ssl.SSLZeroReturnError,
)


class Response(t.NamedTuple):
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes


class ConnectionPool:
    """Idle connections to one server, reused across requests and shared by threads (one request per connection)."""

    def __init__(self, base_url: str, validate_certs: bool, timeout: float):
        parts = urlsplit(base_url)
        self.scheme, self.host = parts.scheme, parts.hostname or ""
        self.port = parts.port or (443 if self.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self._tls = tls_context(validate_certs) if self.scheme == "https" else None
        self._proxy = proxy_for(self.scheme, self.host)
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def send(self, method: str, target: str, headers: dict[str, str], body: bytes | None, replay: bool) -> Response:
        """One request; a reused connection that turns out closed is replaced once when replay is allowed."""
        conn, reused = self._take()
        try:
            return self._exchange(conn, method, target, headers, body)
        except STALE_CONNECTION:
            if not (reused and replay):
                raise
        return self._exchange(self._new(), method, target, headers, body)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _exchange(self, conn, method: str, target: str, headers: dict[str, str], body: bytes | None) -> Response:
        path = self.prefix + target
        if self._proxy and self.scheme == "http":  # a plain HTTP proxy takes the absolute URL
            path = f"http://{self.host}:{self.port}{path}"
            headers = {**headers, **self._proxy[2]}
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except BaseException:
            conn.close()
            raise
        if resp.will_close:
            conn.close()
        else:
            with self._lock:
                self._idle.append(conn)
        return Response(resp.status, resp.reason, {k.lower(): v for k, v in resp.getheaders()}, raw)

    def _take(self) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return self._new(), False

    def _new(self) -> http.client.HTTPConnection:
        host, port = (self._proxy[0], self._proxy[1]) if self._proxy else (self.host, self.port)
        if self._tls is None:
            return http.client.HTTPConnection(host, port, timeout=self.timeout)
        conn = http.client.HTTPSConnection(host, port, timeout=self.timeout, context=self._tls)
        if self._proxy:
            conn.set_tunnel(self.host, self.port, headers=self._proxy[2])
        return conn


def tls_context(validate_certs: bool) -> ssl.SSLContext:
    """The system's trust store (SSL_CERT_FILE and SSL_CERT_DIR apply), or no checks at all when told so."""
    context = ssl.create_default_context()
    if not validate_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def proxy_for(scheme: str, host: str) -> tuple[str, int, dict[str, str]] | None:
    """The proxy the environment (https_proxy, http_proxy, no_proxy) names for this server, as urllib would use."""
    proxy = getproxies().get(scheme)
    if not proxy or proxy_bypass(host):
        return None
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    headers = {}
    if parts.username:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(credentials).decode()
    return parts.hostname or "", parts.port or 80, headers
