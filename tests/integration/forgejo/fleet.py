"""Many runner registrations on a lab forge, made fast through the runner protocol, and a bare API client.

The runner protocol (Connect, JSON over HTTP POST) registers a runner with a registration token. A runner
that never calls again stays offline: the forge has never seen it. `declare` makes it call once, which the
forge records as contact, so the runner is online for the next minute. `BareClient` is the plain stdlib
HTTP client the prune benchmark measures the module against: persistent connections, nothing else.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import threading
import typing as t
from urllib.parse import urlsplit

RUNNER_SERVICE = "/api/actions/runner.v1.RunnerService"


class BareClient:
    """JSON over one keep-alive connection per thread; raises RuntimeError naming the request on failure."""

    def __init__(self, url: str, headers: dict[str, str] | None = None, timeout: float = 30):
        parts = urlsplit(url)
        self.host, self.port, self.timeout = parts.hostname or "", parts.port or 80, timeout
        self.headers = {"Accept": "application/json", **(headers or {})}
        self._local = threading.local()

    def call(self, method: str, path: str, body: t.Any = None, headers: dict[str, str] | None = None) -> t.Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        data = json.dumps(body).encode() if body is not None else None
        sent = {**self.headers, **(headers or {}), **({"Content-Type": "application/json"} if data else {})}
        try:
            conn.request(method, path, body=data, headers=sent)
            resp = conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            raise
        if resp.status >= 300:
            raise RuntimeError(f"{method} {path}: [{resp.status}] {raw[:300].decode('utf-8', 'replace')}")
        return json.loads(raw) if raw else None


class Fleet:
    """Runner registrations in one organisation of a lab forge (Gitea's API and runner protocol)."""

    def __init__(self, url: str, org_token: str, org: str, workers: int = 8):
        self.url, self.org, self.workers = url, org, workers
        self.api = BareClient(url, {"Authorization": f"token {org_token}"})
        self.protocol = BareClient(url, {"Connect-Protocol-Version": "1"})
        self.runners_path = f"/api/v1/orgs/{org}/actions/runners"

    def create_org(self) -> None:
        """A new organisation for this fleet alone. Gitea keeps deleted runners as rows of their owner, and a
        listing reads all of its owner's rows, so a fresh owner keeps one run's timings free of the last's."""
        self.api.call("POST", "/api/v1/orgs", {"username": self.org, "visibility": "public"})

    def delete_org(self) -> None:
        """Delete the organisation with its runners (and no repositories, which it never has)."""
        self.api.call("DELETE", f"/api/v1/orgs/{self.org}")

    def other_orgs(self, prefix: str) -> list[str]:
        """Names of other public organisations that start with prefix: left-overs of interrupted runs."""
        orgs = self.api.call("GET", "/api/v1/orgs?limit=50")
        return [o["username"] for o in orgs if o["username"].startswith(prefix) and o["username"] != self.org]

    def registration_token(self) -> str:
        return self.api.call("POST", f"{self.runners_path}/registration-token")["token"]

    def register(self, names: list[str], labels: t.Sequence[str] = ("bench",)) -> list[dict[str, t.Any]]:
        """Register runners by name, concurrently; each result has id (int), uuid, token and name."""
        token = self.registration_token()

        def one(name: str) -> dict[str, t.Any]:
            body = {"token": token, "name": name, "version": "fleet-bench", "labels": list(labels)}
            runner = self.protocol.call("POST", f"{RUNNER_SERVICE}/Register", body)["runner"]
            return {**runner, "id": int(runner["id"])}

        return self.each(one, names)

    def declare(self, runner: dict[str, t.Any]) -> bool:
        """One authenticated runner call, which the forge counts as contact; False if it no longer knows it."""
        headers = {"x-runner-uuid": runner["uuid"], "x-runner-token": runner["token"]}
        body = {"version": "fleet-bench", "labels": runner.get("labels", [])}  # Declare replaces the labels
        try:
            self.protocol.call("POST", f"{RUNNER_SERVICE}/Declare", body, headers)
        except RuntimeError as exc:
            if "unregistered runner" in str(exc):
                return False
            raise
        return True

    def list(self) -> list[dict[str, t.Any]]:
        runners: list[dict[str, t.Any]] = []
        page = 1
        while True:
            data = self.api.call("GET", f"{self.runners_path}?page={page}&limit=50")
            batch = data["runners"] if isinstance(data, dict) else data
            runners += batch
            if len(batch) < 50:
                return runners
            page += 1

    def delete(self, runner_ids: list[int], workers: int | None = None) -> None:
        self.each(lambda rid: self.api.call("DELETE", f"{self.runners_path}/{rid}"), runner_ids, workers)

    def each(self, func: t.Callable[[t.Any], t.Any], items: list[t.Any], workers: int | None = None) -> list[t.Any]:
        with concurrent.futures.ThreadPoolExecutor(workers or self.workers) as pool:
            return list(pool.map(func, items))
