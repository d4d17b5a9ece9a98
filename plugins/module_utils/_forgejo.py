# Private to foundation.runners: not a public API, may change without notice.
# Copyright: (c) foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP client for the Forgejo API, shared by the forgejo_* modules."""

from __future__ import annotations

import fnmatch
import json
import re
import ssl
import time
import typing as t
from dataclasses import dataclass
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode

from ansible.module_utils.basic import AnsibleModule, env_fallback
from ansible.module_utils.urls import open_url

PAGE_LIMIT = 50
SAFE_METHODS = frozenset({"GET", "HEAD"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})
RUNNER_MANAGEMENT_MIN_FORGEJO = 15
RUNNER_MANAGEMENT_MIN_GITEA = (1, 24)
RUNNER_FIELDS = ("id", "uuid", "name", "labels", "status", "version", "ephemeral", "description")

CONNECTION_ARGS: dict[str, dict[str, t.Any]] = {
    "api_url": {"type": "str", "required": True, "fallback": (env_fallback, ["FORGEJO_URL"])},
    "api_token": {"type": "str", "required": True, "no_log": True, "fallback": (env_fallback, ["FORGEJO_TOKEN"])},
    "validate_certs": {"type": "bool", "default": True},
    "timeout": {"type": "int", "default": 30},
    "retries": {"type": "int", "default": 3},
}

SCOPE_ARGS: dict[str, dict[str, t.Any]] = {
    "scope": {"type": "str", "default": "instance", "choices": ["instance", "org", "user", "repo"]},
    "org": {"type": "str"},
    "repo": {"type": "str"},
}
SCOPE_REQUIRED_IF = [("scope", "org", ["org"]), ("scope", "repo", ["repo"])]


def forgejo_module(options: dict[str, dict[str, t.Any]]) -> AnsibleModule:
    """An AnsibleModule taking the connection and scope options plus the module's own."""
    return AnsibleModule(
        argument_spec={**CONNECTION_ARGS, **SCOPE_ARGS, **options},
        required_if=SCOPE_REQUIRED_IF,
        supports_check_mode=True,
    )


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
        self.base = params["api_url"].rstrip("/")
        if not self.base.endswith("/api/v1"):
            self.base += "/api/v1"
        self.token = params["api_token"]
        self.validate_certs = params["validate_certs"]
        self.timeout = params["timeout"]
        self.retries = max(0, params["retries"])
        self._sleep = sleep
        self._version: ServerVersion | None = None

    def request(
        self, method: str, path: str, query: dict[str, t.Any] | None = None, body: t.Any = None
    ) -> tuple[t.Any, dict[str, str]]:
        url = self.base + path + (f"?{urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json", "Authorization": f"token {self.token}"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        attempts = 1 + (self.retries if method in SAFE_METHODS else 0)
        for attempt in range(attempts):
            try:
                resp = open_url(
                    url,
                    method=method,
                    data=data,
                    headers=headers,
                    validate_certs=self.validate_certs,
                    timeout=self.timeout,
                    follow_redirects="safe",
                )
                raw = resp.read()
                resp_headers = {k.lower(): v for k, v in resp.headers.items()}
                return (json.loads(raw) if raw else None), resp_headers
            except HTTPError as exc:
                error = ForgejoError(method, url, exc.code, _error_reason(exc))
                if exc.code not in RETRY_STATUSES:
                    raise error from exc
            except (URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                if isinstance(reason, ssl.SSLError) or type(exc).__name__ == "SSLValidationError":
                    raise ForgejoError(method, url, None, f"TLS failure: {reason}") from exc
                error = ForgejoError(method, url, None, f"cannot connect: {reason}")
            except ValueError as exc:
                raise ForgejoError(method, url, None, f"response is not JSON: {exc}") from exc
            if attempt + 1 < attempts:
                self._sleep(min(2**attempt, 8))
        raise error

    def get_paged(self, path: str, query: dict[str, t.Any] | None = None) -> list[t.Any]:
        """All items of a paged list (page/limit with X-Total-Count; Gitea's {runners, total_count} too)."""
        items: list[t.Any] = []
        page = 1
        while True:
            data, headers = self.request("GET", path, {**(query or {}), "page": page, "limit": PAGE_LIMIT})
            total = headers.get("x-total-count")
            if isinstance(data, dict):
                total = data.get("total_count", total)
                data = next((v for v in data.values() if isinstance(v, list)), [])
            items.extend(data or [])
            if not data or len(data) < PAGE_LIMIT or (total is not None and len(items) >= int(total)):
                return items
            page += 1

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

    def delete_runner(self, scope: Scope, runner_id: int) -> None:
        self.request("DELETE", f"{scope.runners_path}/{runner_id}")

    def require_runner_registration(self) -> None:
        if self.version.flavour != "forgejo":
            raise FeatureUnsupported(f"Registering a runner through the API is Forgejo's; the server is {self.version}")
        self.require_runner_management("Registering a runner through the API")

    def register_runner(self, scope: Scope, name: str, description: str, ephemeral: bool) -> dict[str, t.Any]:
        self.require_runner_registration()
        body = {"name": name, "description": description, "ephemeral": ephemeral}
        data, _headers = self.request("POST", scope.runners_path, body=body)
        return data or {}


def _error_reason(exc: HTTPError) -> str:
    try:
        body = exc.read().decode("utf-8", "replace")
    except OSError:
        body = ""
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("message"):
        return str(parsed["message"])
    return body.strip()[:300] or str(exc.reason)


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


def run(module: t.Any, action: t.Callable[[ForgejoClient, Scope], dict[str, t.Any]]) -> None:
    """Build client and scope from the module's params, run action, and turn errors into fail_json."""
    try:
        scope = Scope.from_params(module.params)
        client = ForgejoClient(module.params)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    try:
        result = action(client, scope)
    except ForgejoError as exc:
        module.fail_json(msg=str(exc), status=exc.status, url=exc.url, method=exc.method)
    except FeatureUnsupported as exc:
        module.fail_json(msg=str(exc), server_version=client.version.raw)
    module.exit_json(**result)
