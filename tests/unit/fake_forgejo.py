"""A small in-memory stand-in for the Forgejo runners API, for unit tests of edge cases only.

Integration tests run against real servers built by tests/lab/forge.
"""

from __future__ import annotations

import base64
import json
import re
import ssl
import uuid as uuidlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from serving import Served

ADMIN_TOKEN = "admin-write-token"
READ_ADMIN_TOKEN = "admin-read-token"
USER_TOKEN = "user-repo-token"
REGISTRATION_TOKEN = "registration-token-0123456789"
ADMIN_LOGIN = ("forge-admin", "admin-password")


def public(runner: dict) -> dict:
    return {k: v for k, v in runner.items() if k != "scope"}


class FakeForgejo:
    def __init__(self, version: str = "15.0.3+gitea-1.22.0"):
        self.version = version
        self.orgs = {"fleet"}
        self.repos = {"fleet/ci"}
        self.runners: dict[int, dict] = {}
        self.next_id = 1
        self.requests: list[tuple[str, str]] = []
        self.mutations: list[tuple[str, str]] = []
        self.fail_next: list[int] = []
        self.online_first = False  # True: idle and active runners listed before offline ones, as the real servers do
        self.on_request: list = []  # callables run (and dropped) one per request, before it is answered
        self.connections = 0
        self.registration_token_reset = False  # True: the token handed out no longer registers (reset in the UI)
        self.access_tokens: dict[int, dict] = {}  # the admin's own tokens, with their values (sha1)
        self.jobs: list[dict] = []  # the admin jobs listing: {"id", "runs_on": [labels], "status"}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._served = Served(self._server)

    def serve_tls(self, certfile: str) -> None:
        """Answer over HTTPS with the given certificate (and key, in the same PEM file)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = self.url.replace("http://", "https://")

    def start(self):
        self._served.start()

    def stop(self):
        self._served.stop()

    def add_runner(self, name, status="offline", labels=("fenced",), scope="instance"):
        runner_id = self.next_id
        self.next_id += 1
        self.runners[runner_id] = {
            "id": runner_id,
            "uuid": str(uuidlib.uuid4()),
            "name": name,
            "labels": list(labels),
            "status": status,
            "version": "v12.1.0",
            "ephemeral": False,
            "description": "",
            "scope": scope,
        }
        return self.runners[runner_id]

    def writes(self):
        return list(self.mutations)

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real forges answer

            def setup(self):
                super().setup()
                fake.connections += 1

            def log_message(self, *args):
                pass

            def _reply(self, status, body=None, headers=None):
                raw = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(raw)

            def _route(self, method):
                url = urlparse(self.path)
                path = url.path.removeprefix("/api/v1")
                length = int(self.headers.get("Content-Length") or 0)
                self.body = json.loads(self.rfile.read(length)) if length else None  # read before any answer
                fake.requests.append((method, path))
                if fake.on_request:
                    fake.on_request.pop(0)()
                if fake.fail_next:
                    return self._reply(fake.fail_next.pop(0), {"message": "injected failure"})
                if path == "/version":
                    return self._reply(200, {"version": fake.version})
                if path == "/api/actions/runner.v1.RunnerService/Register" and method == "POST":
                    return self._protocol_register()
                if path.startswith("/users/"):
                    return self._access_tokens(method, path)
                token = self.headers.get("Authorization", "").removeprefix("token ")
                if token not in (ADMIN_TOKEN, READ_ADMIN_TOKEN, USER_TOKEN):
                    return self._reply(401, {"message": "invalid username, password or token"})
                scope, rest = self._scope(path)
                if scope is None:
                    return self._reply(404, {"message": "The target couldn't be found.", "errors": []})
                if scope == "instance" and token == USER_TOKEN:
                    return self._reply(
                        403, {"message": "token does not have at least one of required scope(s): [read:admin]"}
                    )
                if method != "GET" and token == READ_ADMIN_TOKEN:
                    return self._reply(
                        403, {"message": "token does not have at least one of required scope(s): [write:admin]"}
                    )
                major = 99 if fake.version.startswith("1.") else int(re.match(r"\d+", fake.version).group())
                if rest == "/registration-token":
                    gitea = fake.version.startswith("1.")
                    if method == ("POST" if gitea else "GET") and (not gitea or "/actions/" in path):
                        return self._reply(200, {"token": REGISTRATION_TOKEN})
                    return self._reply(404, {"message": "404 page not found"})
                if rest == "/jobs" and method == "GET" and scope == "instance":
                    wanted = set(",".join(parse_qs(url.query).get("labels", [""])).split(",")) - {""}
                    jobs = [j for j in fake.jobs if not wanted or wanted & set(j["runs_on"])]
                    return self._reply(200, jobs)
                if major < 15:
                    return self._reply(404, {"message": "not found"})
                return self._runners(method, scope, rest, parse_qs(url.query))

            def _access_tokens(self, method, path):
                """A user's tokens as Forgejo keeps them: basic auth only, the value shown once, scopes normalised."""
                login = ":".join(ADMIN_LOGIN).encode()
                if self.headers.get("Authorization") != "Basic " + base64.b64encode(login).decode():
                    return self._reply(401, {"message": "auth required"})
                if not path.startswith(f"/users/{ADMIN_LOGIN[0]}/tokens"):
                    return self._reply(403, {"message": "you can only manage your own tokens"})
                rest = path.removeprefix(f"/users/{ADMIN_LOGIN[0]}/tokens").strip("/")
                shown = [tok | {"sha1": ""} for tok in fake.access_tokens.values()]
                if method == "GET" and not rest:
                    return self._reply(200, shown, {"X-Total-Count": str(len(shown))})
                if method == "POST" and not rest:
                    if any(tok["name"] == self.body["name"] for tok in fake.access_tokens.values()):
                        return self._reply(400, {"message": "access token name has been used already"})
                    token_id = max(fake.access_tokens, default=0) + 1
                    value = uuidlib.uuid4().hex + uuidlib.uuid4().hex[:8]
                    scopes = set(self.body.get("scopes") or [])
                    scopes -= {"read:" + s.split(":", 1)[1] for s in scopes if s.startswith("write:")}
                    token = {"id": token_id, "name": self.body["name"], "sha1": value, "token_last_eight": value[-8:]}
                    fake.access_tokens[token_id] = token | {"scopes": sorted(scopes)}
                    fake.mutations.append((method, path))
                    return self._reply(201, fake.access_tokens[token_id])
                if method == "DELETE" and rest.isdigit() and int(rest) in fake.access_tokens:
                    del fake.access_tokens[int(rest)]
                    fake.mutations.append((method, path))
                    return self._reply(204)
                return self._reply(404, {"message": "not found"})

            def _protocol_register(self):
                """The runner protocol's Register as Connect answers it: JSON, int64 ids as strings."""
                if "Authorization" in self.headers:
                    return self._reply(400, {"code": "invalid_argument", "message": "unexpected API token"})
                if (self.body or {}).get("token") != REGISTRATION_TOKEN or fake.registration_token_reset:
                    unknown = {"code": "unauthenticated", "message": "runner registration token not found"}
                    return self._reply(401, unknown)
                runner = fake.add_runner(self.body["name"], labels=self.body.get("labels") or ())
                fake.mutations.append(("POST", self.path))
                body = {"id": str(runner["id"]), "uuid": runner["uuid"], "token": "runner-secret-token"}
                return self._reply(200, {"runner": {**body, "name": runner["name"], "labels": runner["labels"]}})

            def _scope(self, path):
                patterns = [
                    (r"^/admin/(?:actions/)?runners(?P<rest>/.*)?$", lambda m: "instance"),
                    (
                        r"^/orgs/(?P<org>[^/]+)/actions/runners(?P<rest>/.*)?$",
                        lambda m: f"org:{m['org']}" if m["org"] in fake.orgs else None,
                    ),
                    (r"^/user/actions/runners(?P<rest>/.*)?$", lambda m: "user"),
                    (
                        r"^/repos/(?P<repo>[^/]+/[^/]+)/actions/runners(?P<rest>/.*)?$",
                        lambda m: f"repo:{m['repo']}" if m["repo"] in fake.repos else None,
                    ),
                ]
                for pattern, scope_of in patterns:
                    match = re.match(pattern, path)
                    if match:
                        return scope_of(match), match["rest"] or ""
                return None, ""

            def _runners(self, method, scope, rest, query):
                mine = {k: v for k, v in fake.runners.items() if v["scope"] == scope}
                if rest == "" and method == "GET":
                    page, limit = int(query.get("page", ["1"])[0]), int(query.get("limit", ["30"])[0])
                    order = sorted(mine, key=lambda k: (fake.online_first and mine[k]["status"] == "offline", k))
                    items = [public(mine[key]) for key in order]
                    chunk = items[(page - 1) * limit : page * limit]
                    return self._reply(200, chunk, {"X-Total-Count": str(len(items))})
                if rest == "" and method == "POST":
                    runner = fake.add_runner(self.body["name"], status="offline", labels=(), scope=scope)
                    fake.mutations.append(("POST", self.path))
                    return self._reply(
                        201, {"id": runner["id"], "uuid": runner["uuid"], "token": "runner-secret-token"}
                    )
                match = re.match(r"^/(\d+)$", rest)
                if match and int(match[1]) in mine:
                    if method == "GET":
                        return self._reply(200, public(mine[int(match[1])]))
                    if method == "DELETE":
                        del fake.runners[int(match[1])]
                        fake.mutations.append(("DELETE", self.path))
                        return self._reply(204)
                return self._reply(404, {"message": "runner not found"})

            def do_GET(self):
                self._route("GET")

            def do_POST(self):
                self._route("POST")

            def do_DELETE(self):
                self._route("DELETE")

        return Handler
