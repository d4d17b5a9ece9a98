"""The lab forge as a Forgejo 14 server: a reverse proxy in front of the lab's Gitea that reports Forgejo 14's
version and answers the runner endpoints as Forgejo 11 to 14 do (their OpenAPI spec,
../shared/forgejo-api/forgejo-v11.0.15.v1_json.tmpl):

- GET  /api/v1/version                                  -> 14.0.2+gitea-1.22.0
- GET  .../runners/registration-token (admin, org, user, repo) -> the forge's token (Gitea: POST under /actions)
- anything else under .../actions/runners (list, get, delete, register) -> 404, as the routes do not exist
- everything else (the web UI, the API, the runner protocol under /api/actions) goes through unchanged.

With the mode file holding "off" every request goes through unchanged: the forge "upgraded" (the collection then
sees the lab's Gitea, which has the runners API). The mode is read on every request, so switching needs no restart.

    forgejo14_proxy.py LISTEN_HOST LISTEN_PORT UPSTREAM_URL MODE_FILE
"""

from __future__ import annotations

import http.client
import http.server
import json
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

VERSION = "14.0.2+gitea-1.22.0"
SCOPE = r"/api/v1/(?:admin|orgs/[^/]+|user|repos/[^/]+/[^/]+)"
TOKEN_FORGEJO = re.compile(
    r"^/api/v1/admin/runners/registration-token$|^" + SCOPE + r"/actions/runners/registration-token$"
)
RUNNERS_API = re.compile(r"^" + SCOPE + r"/actions/runners(?:/.*)?$")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization"}


class Proxy(http.server.BaseHTTPRequestHandler):
    upstream = urlsplit("http://127.0.0.1:3001")
    mode_file = Path("/dev/null")
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: object) -> None:
        sys.stderr.write(f"{self.command} {self.path} " + (fmt % args) + "\n")

    def _mode(self) -> str:
        try:
            return self.mode_file.read_text().strip() or "14"
        except OSError:
            return "14"

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _forward(self, method: str, path: str, body: bytes | None) -> None:
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"host", "content-length"}}
        headers["Host"] = self.upstream.netloc
        if body is not None:
            headers["Content-Length"] = str(len(body))
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except OSError as exc:
            self._answer(502, {"message": f"lab proxy: upstream {self.upstream.netloc}: {exc}"})
            return
        finally:
            conn.close()
        self.send_response(resp.status, resp.reason)
        for key, value in resp.getheaders():
            if key.lower() not in HOP_BY_HOP | {"content-length"}:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        path = urlsplit(self.path).path
        if self._mode() == "off":
            self._forward(self.command, self.path, body)
        elif path == "/api/v1/version" and self.command == "GET":
            self._answer(200, {"version": VERSION})
        elif TOKEN_FORGEJO.match(path) and self.command == "GET":
            target = path.replace("/api/v1/admin/runners/", "/api/v1/admin/actions/runners/")
            self._forward("POST", target, b"")
        elif RUNNERS_API.match(path):
            self._answer(404, {"message": "The target couldn't be found.", "errors": []})
        else:
            self._forward(self.command, self.path, body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


def main() -> None:
    host, port, upstream, mode_file = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    Proxy.upstream = urlsplit(upstream)
    Proxy.mode_file = Path(mode_file)
    http.server.ThreadingHTTPServer((host, port), Proxy).serve_forever()


if __name__ == "__main__":
    main()
