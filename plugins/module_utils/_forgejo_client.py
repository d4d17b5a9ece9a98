# Private to foundation.runners: not a public API, may change without notice.
# Copyright: (c) foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Forgejo API client, shared by the forgejo_* modules and the standby watchdog; it imports nothing of Ansible."""

from __future__ import annotations

import base64
import fnmatch
import http.client
import json
import re
import ssl
import time
import typing as t
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from ansible_collections.foundation.runners.plugins.module_utils._forgejo_http import ConnectionPool, Response

API_PREFIX = "/api/v1"
# The runner protocol (Connect over HTTP, JSON bodies) that forgejo-runner register speaks; every Forgejo and Gitea.
RUNNER_PROTOCOL_PREFIX = "/api/actions/runner.v1.RunnerService"
PAGE_LIMIT = 50
# Requests that may be sent again after a failure: repeating them cannot do more than the first one did.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "DELETE"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})
RUNNER_MANAGEMENT_MIN_FORGEJO = 15
RUNNER_MANAGEMENT_MIN_GITEA = (1, 24)
RUNNER_FIELDS = ("id", "uuid", "name", "labels", "status", "version", "ephemeral", "description")


class ForgejoError(Exception):
    """A failed API call, carrying what was asked and what came back."""

    def __init__(self, method: str, url: str, status: int | None, reason: str):
        self.method, self.url, self.status, self.reason = method, url, status, reason
        where = f"[{status}] " if status is not None else ""
        super().__init__(f"Request {method} {url} failed: {where}{reason}")


class FeatureUnsupported(Exception):
    """The server is too old (or of another flavour) for what was asked."""


@dataclass(frozen=True)
class ServerVersion:
    raw: str
    flavour: str  # "forgejo" or "gitea"
    release: tuple[int, int, int]

    @classmethod
    def parse(cls, raw: str) -> ServerVersion:
        match = re.match(r"v?(\d+)\.(\d+)\.(\d+)", raw)
        if not match:
            raise ValueError(f"unrecognised server version {raw!r}")
        release = (int(match.group(1)), int(match.group(2)), int(match.group(3)))
        # Forgejo numbers its releases from 7 upwards and appends "+gitea-1.x"; Gitea stays on 1.x.
        flavour = "forgejo" if "+gitea" in raw or release[0] >= 7 else "gitea"
        return cls(raw=raw, flavour=flavour, release=release)

    @property
    def has_runner_management(self) -> bool:
        if self.flavour == "forgejo":
            return self.release[0] >= RUNNER_MANAGEMENT_MIN_FORGEJO
        return self.release[:2] >= RUNNER_MANAGEMENT_MIN_GITEA

    def __str__(self) -> str:
        return f"{self.flavour.capitalize()} {self.raw}"


@dataclass(frozen=True)
class Scope:
    kind: str
    org: str | None = None
    repo: str | None = None

    @classmethod
    def from_params(cls, params: dict[str, t.Any]) -> Scope:
        kind = params["scope"]
        repo = params.get("repo")
        if kind == "repo" and (not repo or repo.count("/") != 1 or "" in repo.split("/")):
            raise ValueError(f"repo must be given as OWNER/NAME, got {repo!r}")
        if kind != "org" and params.get("org"):
            raise ValueError(f"org is only used with scope=org, not scope={kind}")
        if kind != "repo" and repo:
            raise ValueError(f"repo is only used with scope=repo, not scope={kind}")
        return cls(kind=kind, org=params.get("org"), repo=repo)

    @property
    def runners_path(self) -> str:
        if self.kind == "instance":
            return "/admin/actions/runners"
        if self.kind == "org":
            return f"/orgs/{quote(self.org or '', safe='')}/actions/runners"
        if self.kind == "user":
            return "/user/actions/runners"
        owner, name = (self.repo or "/").split("/", 1)
        return f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}/actions/runners"

    def registration_token_path(self, flavour: str) -> str:
        # Forgejo 7 to 15 answer the admin path below; Gitea moved it under /admin/actions.
        if self.kind == "instance" and flavour == "forgejo":
            return "/admin/runners/registration-token"
        return f"{self.runners_path}/registration-token"

    def __str__(self) -> str:
        names = {"instance": "instance", "org": f"org {self.org}", "user": "user", "repo": f"repo {self.repo}"}
        return names[self.kind]


class ForgejoClient:
    def __init__(self, params: dict[str, t.Any], sleep: t.Callable[[float], None] = time.sleep):
        if not re.match(r"^https?://[^/]+", params["api_url"] or ""):
            raise ValueError(f"api_url must be an http:// or https:// URL, got {params['api_url']!r}")
        self.root = params["api_url"].rstrip("/").removesuffix("/api/v1")
        self.base = self.root + API_PREFIX
        if self.root.startswith("http://") and not params.get("allow_insecure_http"):
            raise ValueError(
                f"api_url {self.root} is plain http, which would send the tokens readable over the network. "
                "Use the forge's https:// URL, or set allow_insecure_http for a forge reached over a trusted link."
            )
        self.authorization = _authorization(params)
        self.validate_certs = params["validate_certs"]
        self.timeout = params["timeout"]
        self.retries = max(0, params["retries"])
        self._sleep = sleep
        self._version: ServerVersion | None = None
        self._pool = ConnectionPool(self.root, self.validate_certs, self.timeout)

    def request(
        self,
        method: str,
        path: str,
        query: dict[str, t.Any] | None = None,
        body: t.Any = None,
        *,
        under: str = API_PREFIX,
        auth: bool = True,
    ) -> tuple[t.Any, dict[str, str]]:
        """One call to path under the API prefix; auth=False sends no API token (the runner protocol)."""
        target = under + path + (f"?{urlencode(query)}" if query else "")
        url = self.root + target
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json"}
        if auth:
            headers["Authorization"] = self.authorization
        if data is not None:
            headers["Content-Type"] = "application/json"
        idempotent = method in IDEMPOTENT_METHODS
        attempts = 1 + (self.retries if idempotent else 0)
        for attempt in range(attempts):
            delay = min(2**attempt, 8)
            try:
                resp = self._pool.send(method, target, headers, data, replay=idempotent)
            except ssl.SSLError as exc:
                raise ForgejoError(method, url, None, f"TLS failure: {exc}") from exc
            except (OSError, http.client.HTTPException) as exc:
                error = ForgejoError(method, url, None, f"cannot connect: {exc}")
            else:
                if resp.status < 300:
                    try:
                        return (json.loads(resp.body) if resp.body else None), resp.headers
                    except ValueError as exc:
                        raise ForgejoError(method, url, resp.status, f"response is not JSON: {exc}") from exc
                if resp.status < 400:
                    where = resp.headers.get("location", "elsewhere")
                    reason = f"redirected to {where}; set api_url to the address the API answers on"
                    raise ForgejoError(method, url, resp.status, reason)
                error = ForgejoError(method, url, resp.status, _error_reason(resp))
                if resp.status not in RETRY_STATUSES:
                    raise error
                delay = _retry_after(resp) or delay
            if attempt + 1 < attempts:
                self._sleep(delay)
        raise error

    def close(self) -> None:
        self._pool.close()

    def get_paged(self, path: str, query: dict[str, t.Any] | None = None) -> list[t.Any]:
        """All items of a paged list (page/limit with X-Total-Count; Gitea's {runners, total_count} too)."""
        items: list[t.Any] = []
        page = 1
        while True:
            data, headers = self.request("GET", path, {**(query or {}), "page": page, "limit": PAGE_LIMIT})
            total = data.get("total_count") if isinstance(data, dict) else None
            total = headers.get("x-total-count") if total is None else total
            data = page_items(data)
            items.extend(data)
            if not data or len(data) < PAGE_LIMIT or (total is not None and len(items) >= int(total)):
                return items
            page += 1

    @property
    def version_read(self) -> bool:
        """Whether the server's version has been read (and parsed) already."""
        return self._version is not None

    @property
    def version(self) -> ServerVersion:
        if self._version is None:
            data, _headers = self.request("GET", "/version")
            try:
                self._version = ServerVersion.parse(str((data or {}).get("version", "")))
            except ValueError as exc:
                raise ForgejoError("GET", self.base + "/version", 200, str(exc)) from exc
        return self._version

    def require_runner_management(self, action: str, hint: str = "") -> None:
        version = self.version
        if not version.has_runner_management:
            message = f"{action} needs the runners API of Forgejo {RUNNER_MANAGEMENT_MIN_FORGEJO} or later; "
            message += f"the server reports {version}."
            raise FeatureUnsupported(message + (f" {hint}" if hint else ""))

    def registration_token(self, scope: Scope) -> str:
        # Forgejo hands the token out with GET; Gitea 1.24+ only with POST, which also reuses the active token.
        flavour = self.version.flavour
        method, path = ("GET" if flavour == "forgejo" else "POST"), scope.registration_token_path(flavour)
        data, _headers = self.request(method, path)
        token = (data or {}).get("token")
        if not token:
            raise ForgejoError(method, self.base + path, 200, "response has no token")
        return token

    def list_runners(self, scope: Scope) -> list[dict[str, t.Any]]:
        self.require_runner_management("Listing runners")
        return [normalise_runner(r) for r in self.get_paged(scope.runners_path)]

    def get_runner(self, scope: Scope, runner_id: int) -> dict[str, t.Any]:
        data, _headers = self.request("GET", f"{scope.runners_path}/{runner_id}")
        return normalise_runner(data)

    def delete_runner(self, scope: Scope, runner_id: int) -> bool:
        """Delete a runner; False when the server no longer knows it (deleted by someone else, or by a retry)."""
        try:
            self.request("DELETE", f"{scope.runners_path}/{runner_id}")
        except ForgejoError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def online_runners(self, scope: Scope) -> list[dict[str, t.Any]] | None:
        """The runners listed as idle or active, read from the head of the listing.

        Forgejo (newest contact first) and Gitea (by status) list online runners before offline ones, so the
        pages up to the first offline runner hold them all. None when a page shows another order.
        """
        online: list[dict[str, t.Any]] = []
        page = 1
        while True:
            data, _headers = self.request("GET", scope.runners_path, {"page": page, "limit": PAGE_LIMIT})
            runners = [normalise_runner(r) for r in page_items(data)]
            if not online_first(runners):
                return None
            online += [r for r in runners if r["status"] != "offline"]
            if len(runners) < PAGE_LIMIT or any(r["status"] == "offline" for r in runners):
                return online
            page += 1

    def require_runner_registration(self) -> None:
        if self.version.flavour != "forgejo":
            raise FeatureUnsupported(f"Registering a runner through the API is Forgejo's; the server is {self.version}")
        self.require_runner_management("Registering a runner through the API")

    def register_runner(self, scope: Scope, name: str, description: str, ephemeral: bool) -> dict[str, t.Any]:
        self.require_runner_registration()
        body = {"name": name, "description": description, "ephemeral": ephemeral}
        data, _headers = self.request("POST", scope.runners_path, body=body)
        return data or {}

    def register_with_token(
        self, registration_token: str, name: str, labels: list[str], version: str
    ) -> dict[str, t.Any]:
        """The runner protocol's Register call, as forgejo-runner register makes it, sent from here instead.

        The registration token stays in this process: it is neither on a command line nor on the runner's host.
        """
        body = {"name": name, "token": registration_token, "version": version, "labels": labels}
        data, _headers = self.request("POST", "/Register", body=body, under=RUNNER_PROTOCOL_PREFIX, auth=False)
        runner = (data or {}).get("runner") or {}
        if not runner.get("uuid") or not runner.get("token"):
            raise ForgejoError("POST", self.root + RUNNER_PROTOCOL_PREFIX + "/Register", 200, "response has no runner")
        return {"id": int(runner.get("id", 0)), "uuid": runner["uuid"], "token": runner["token"], "name": name}


def _authorization(params: dict[str, t.Any]) -> str:
    if params.get("api_token"):
        return f"token {params['api_token']}"
    login = f"{params.get('api_username') or ''}:{params.get('api_password') or ''}"
    return "Basic " + base64.b64encode(login.encode()).decode()


def _error_reason(resp: Response) -> str:
    body = resp.body.decode("utf-8", "replace")
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("message"):
        return str(parsed["message"])
    return body.strip()[:300] or resp.reason


def _retry_after(resp: Response) -> float:
    """The server's Retry-After in seconds, capped at 30; 0 when it sent none (or a date)."""
    value = resp.headers.get("retry-after", "")
    return min(float(value), 30.0) if value.isdigit() else 0.0


def timer_program_params(config: dict[str, t.Any]) -> dict[str, t.Any]:
    """The client's parameters for a program a timer runs (the watchdog, the forge metrics), from its JSON
    configuration: the token read from its root-only file, and no retries (the next tick is the retry)."""
    with open(config["token_file"], encoding="utf-8") as handle:
        token = handle.read().strip()
    return {
        "api_url": config["api_url"],
        "api_token": token,
        "validate_certs": config.get("validate_certs", True),
        "allow_insecure_http": bool(config.get("allow_insecure_http", False)),
        "timeout": int(config.get("timeout", 10)),
        "retries": 0,
        "scope": config.get("scope", "instance"),
        "org": config.get("org"),
        "repo": config.get("repo"),
    }


def normalise_runner(raw: dict[str, t.Any]) -> dict[str, t.Any]:
    """One shape for a runner: Forgejo's, with Gitea's label objects and online/busy mapped onto it."""
    labels = [label["name"] if isinstance(label, dict) else str(label) for label in raw.get("labels") or []]
    status = str(raw.get("status", "offline")).lower()
    if status == "online":
        status = "active" if raw.get("busy") else "idle"
    return {
        "id": int(raw.get("id", 0)),
        "uuid": raw.get("uuid", ""),
        "name": raw.get("name", ""),
        "labels": labels,
        "status": status,
        "version": raw.get("version", ""),
        "ephemeral": bool(raw.get("ephemeral", False)),
        "description": raw.get("description", ""),
    }


def page_items(data: t.Any) -> list[t.Any]:
    """The items of one page: Forgejo's bare array, or the array inside Gitea's {runners, total_count}."""
    if isinstance(data, dict):
        return next((v for v in data.values() if isinstance(v, list)), [])
    return data or []


def online_first(runners: list[dict[str, t.Any]]) -> bool:
    """True when no offline runner comes before an idle or active one."""
    statuses = [r["status"] == "offline" for r in runners]
    return statuses == sorted(statuses)


def select_runners(
    runners: list[dict[str, t.Any]],
    names: list[str] | None = None,
    labels: list[str] | None = None,
    statuses: list[str] | None = None,
) -> list[dict[str, t.Any]]:
    """Runners whose name matches any glob in names, that carry all labels, and whose status is listed."""
    selected = []
    for runner in runners:
        if names and not any(fnmatch.fnmatchcase(runner["name"], pattern) for pattern in names):
            continue
        if labels and not set(labels) <= set(runner["labels"]):
            continue
        if statuses and runner["status"] not in statuses:
            continue
        selected.append(runner)
    return selected
