"""Workflows on the lab forge: make a repository, push files (a workflow among them), wait for the run's
result and read its job logs, all through the forge's HTTP API (Gitea's and Forgejo's shapes agree here).

    forge = LabForge(url, owner_token)
    repo = forge.create_repo("rn-hello")
    repo.set_secret("LAB_SECRET", "...")
    push = repo.push({".gitea/workflows/ci.yml": WORKFLOW})
    run = repo.wait_run(push, timeout=120)
    run.conclusion, run.log, run.push_to_start, run.start_to_result
    repo.delete()
"""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import requests

DONE = {"completed"}
NO_RUN_AFTER = 30  # seconds after a push with no run: the forge found no workflow (Gitea reads .gitea/workflows)


class ForgeError(RuntimeError):
    """A forge API call that failed, naming the request, its status and the forge's reason."""


@dataclass
class Push:
    """A commit made by Repo.push, and when it was made (wall clock, seconds since the epoch)."""

    sha: str
    at: float


@dataclass
class Job:
    id: int
    name: str
    conclusion: str
    steps: list[dict]
    log: str
    first_log_at: float | None  # when the runner logged the job's first line (the job started)


@dataclass
class Run:
    """A finished workflow run, with its jobs' logs and timings in seconds."""

    id: int
    conclusion: str
    jobs: list[Job]
    push: Push
    done_at: float  # when the result was first seen through the API
    log: str = field(init=False)

    def __post_init__(self):
        self.log = "\n".join(job.log for job in self.jobs)

    @property
    def started_at(self) -> float:
        return min(j.first_log_at for j in self.jobs if j.first_log_at is not None)

    @property
    def push_to_start(self) -> float:
        return self.started_at - self.push.at

    @property
    def start_to_result(self) -> float:
        return self.done_at - self.started_at

    def step_conclusions(self, job: int = 0) -> list[str]:
        return [step["conclusion"] for step in self.jobs[job].steps]


def _log_time(line: str) -> float | None:
    """The runner's timestamp at the start of a job log line (2026-11-28T09:38:23.6370351Z ...)."""
    stamp = line.split(" ", 1)[0]
    if not stamp.endswith("Z") or "T" not in stamp:
        return None
    whole, dot, fraction = stamp[:-1].partition(".")
    try:
        seconds = datetime.fromisoformat(whole + "+00:00").timestamp()
    except ValueError:
        return None
    return seconds + (float("0." + fraction) if dot and fraction else 0.0)


class LabForge:
    """API access to the lab forge with a token that may create repositories (write:repository,user)."""

    def __init__(self, url: str, token: str, admin_token: str | None = None):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {token}"
        self.admin_token = admin_token or token

    def call(self, method: str, path: str, expect: tuple[int, ...] = (200, 201, 204), **kwargs) -> requests.Response:
        """One API call; a GET that times out is asked again (the forge's SQLite stalls for seconds under load)."""
        url = f"{self.url}/api/v1{path}"
        attempts = 3 if method == "GET" else 1
        for attempt in range(attempts):
            try:
                resp = self.session.request(method, url, timeout=30, **kwargs)
                break
            except (requests.Timeout, requests.ConnectionError):
                if attempt + 1 == attempts:
                    raise
                time.sleep(2)
        if resp.status_code not in expect:
            raise ForgeError(f"Request {method} {url} failed: [{resp.status_code}] {resp.text[:500]}")
        return resp

    def owner(self) -> str:
        return self.call("GET", "/user").json()["login"]

    def create_repo(self, prefix: str) -> Repo:
        """A new repository named PREFIX-<random>, with a main branch."""
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        data = self.call("POST", "/user/repos", json={"name": name, "auto_init": True, "default_branch": "main"}).json()
        return Repo(self, data["full_name"])

    def registration_token(self) -> str:
        """An instance registration token (Gitea hands them out by POST, Forgejo by GET)."""
        headers = {"Authorization": f"token {self.admin_token}"}
        path = "/admin/actions/runners/registration-token"
        for method in ("POST", "GET"):
            resp = self.session.request(method, f"{self.url}/api/v1{path}", headers=headers, timeout=30)
            if resp.ok:
                return resp.json()["token"]
        raise ForgeError(f"Request GET {self.url}/api/v1{path} failed: [{resp.status_code}] {resp.text[:500]}")

    def delete_runner(self, runner_id: int) -> None:
        headers = {"Authorization": f"token {self.admin_token}"}
        self.session.delete(f"{self.url}/api/v1/admin/actions/runners/{runner_id}", headers=headers, timeout=30)

    def runners(self) -> list[dict]:
        """Every runner of the forge, page by page (other parts may register hundreds at once), as the admin."""
        headers = {"Authorization": f"token {self.admin_token}"}
        found: list[dict] = []
        for page in range(1, 1000):
            path = f"/admin/actions/runners?limit=50&page={page}"
            body = self.call("GET", path, headers=headers).json()
            batch = body["runners"] if isinstance(body, dict) else body
            found += batch
            if len(batch) < 50:
                break
        return found

    def named(self, name: str) -> list[dict]:
        return [r for r in self.runners() if r["name"] == name]

    def wait_status(self, name: str, want: set[str], timeout: float) -> tuple[str, float]:
        """Waits until runner ``name`` has a status in ``want``; returns it and the seconds it took."""
        start = time.monotonic()
        status = "absent"
        while time.monotonic() - start < timeout:
            found = self.named(name)
            status = found[0]["status"] if found else "absent"
            if status in want:
                return status, time.monotonic() - start
            time.sleep(2)
        raise TimeoutError(f"runner {name} is still {status} after {timeout:.0f} s (wanted {sorted(want)})")


class Repo:
    def __init__(self, forge: LabForge, full_name: str):
        self.forge, self.full_name = forge, full_name

    def registration_token(self) -> str:
        """A registration token for runners of this repository alone (Gitea: POST, Forgejo: GET)."""
        path = f"/repos/{self.full_name}/actions/runners/registration-token"
        resp = self.forge.call("POST", path, expect=(200, 201, 404, 405))
        if resp.status_code not in (200, 201):
            resp = self.forge.call("GET", path)
        return resp.json()["token"]

    def runners(self) -> list[dict]:
        body = self.forge.call("GET", f"/repos/{self.full_name}/actions/runners?limit=50").json()
        return body["runners"] if isinstance(body, dict) else body

    def set_secret(self, name: str, value: str) -> None:
        self.forge.call("PUT", f"/repos/{self.full_name}/actions/secrets/{name}", json={"data": value})

    def push(self, files: dict[str, str], message: str = "lab workflow") -> Push:
        """One commit on main writing FILES (path: text); a workflow among them starts a run."""
        changes = []
        for path, text in files.items():
            existing = self.forge.call("GET", f"/repos/{self.full_name}/contents/{path}", expect=(200, 404))
            change = {"path": path, "content": base64.b64encode(text.encode()).decode(), "operation": "create"}
            if existing.status_code == 200:
                change.update(operation="update", sha=existing.json()["sha"])
            changes.append(change)
        at = time.time()
        body = {"files": changes, "message": message, "branch": "main"}
        data = self.forge.call("POST", f"/repos/{self.full_name}/contents", json=body).json()
        return Push(sha=data["commit"]["sha"], at=at)

    def runs(self) -> list[dict]:
        return self.forge.call("GET", f"/repos/{self.full_name}/actions/runs?limit=50").json()["workflow_runs"]

    def wait_run(self, push: Push, timeout: float = 180, poll: float = 0.2) -> Run:
        """The run the push started, once it has a result; its jobs' logs come with it."""
        deadline = time.monotonic() + timeout
        run = None
        while time.monotonic() < deadline:
            run = next((r for r in self.runs() if r.get("head_sha") == push.sha), None)
            if run and run["status"] in DONE:
                done_at = time.time()
                return Run(run["id"], run["conclusion"], self.jobs(run["id"]), push, done_at)
            if not run and time.time() - push.at > NO_RUN_AFTER:
                break
            time.sleep(poll)
        state = f"status {run['status']}" if run else "no run was created"
        raise TimeoutError(f"{self.full_name}: the run for {push.sha[:10]} did not finish in {timeout:.0f} s ({state})")

    def wait_started(self, push: Push, timeout: float = 60) -> float:
        """Waits until a job of the push's run has logged its first line; returns when that was."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = next((r for r in self.runs() if r.get("head_sha") == push.sha), None)
            if run:
                for job in self.jobs(run["id"]):
                    if job.first_log_at is not None:
                        return job.first_log_at
            time.sleep(0.25)
        raise TimeoutError(f"{self.full_name}: no job of {push.sha[:10]} started in {timeout:.0f} s")

    def jobs(self, run_id: int) -> list[Job]:
        jobs = self.forge.call("GET", f"/repos/{self.full_name}/actions/runs/{run_id}/jobs").json()["jobs"]
        out = []
        for job in jobs:
            resp = self.forge.call("GET", f"/repos/{self.full_name}/actions/jobs/{job['id']}/logs", expect=(200, 404))
            log = resp.text if resp.status_code == 200 else ""
            first = next((t for t in map(_log_time, log.splitlines()) if t is not None), None)
            out.append(Job(job["id"], job["name"], job.get("conclusion") or "", job.get("steps") or [], log, first))
        return out

    def delete(self) -> None:
        self.forge.call("DELETE", f"/repos/{self.full_name}", expect=(204, 404))
