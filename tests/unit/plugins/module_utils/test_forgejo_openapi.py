"""The paths and fields the Forgejo client uses, checked against Forgejo's official OpenAPI specs (v11 LTS, v15)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from ansible_collections.foundation.runners.plugins.module_utils._forgejo_client import (
    Scope,
    ServerVersion,
    normalise_runner,
)

SPECS = Path(os.environ.get("FORGEJO_API_SPECS", Path(__file__).resolve().parents[5] / "shared" / "forgejo-api"))
SCOPES = [Scope("instance"), Scope("org", org="{org}"), Scope("user"), Scope("repo", repo="{owner}/{repo}")]


def load(version: str) -> dict:
    text = (SPECS / f"forgejo-{version}.v1_json.tmpl").read_text()
    return json.loads(re.sub(r"\{\{[^}]*\}\}", "X", text))


@pytest.fixture(scope="module", params=["v11.0.15", "v15.0.3"])
def spec(request):
    return request.param, load(request.param)


def operations(spec_doc: dict, path: str) -> set[str]:
    return {method.upper() for method in spec_doc["paths"].get(unquote(path), {}) if method != "parameters"}


@pytest.mark.parametrize("scope", SCOPES, ids=lambda s: s.kind)
def test_registration_token_path_exists_in_both(spec, scope):
    _version, doc = spec
    assert "GET" in operations(doc, scope.registration_token_path("forgejo"))


@pytest.mark.parametrize("scope", SCOPES, ids=lambda s: s.kind)
def test_runner_management_paths_match_the_version_check(spec, scope):
    version, doc = spec
    has_api = ServerVersion.parse(version.removeprefix("v") + "+gitea-1.22.0").has_runner_management
    assert ({"GET", "POST"} <= operations(doc, scope.runners_path)) is has_api
    assert ({"GET", "DELETE"} <= operations(doc, scope.runners_path + "/{runner_id}")) is has_api


def test_runner_fields_and_registration_response():
    definitions = load("v15.0.3")["definitions"]
    runner_fields = set(definitions["ActionRunner"]["properties"])
    assert set(normalise_runner({})) <= runner_fields
    assert set(definitions["ActionRunner"]["properties"]["status"]["enum"]) == {"offline", "idle", "active"}
    assert {"id", "uuid", "token"} <= set(definitions["RegisterRunnerResponse"]["properties"])
    assert set(definitions["RegisterRunnerOptions"]["properties"]) >= {"name", "description", "ephemeral"}
    assert load("v15.0.3")["responses"]["ActionRunnerList"]["headers"].keys() >= {"X-Total-Count"}


@pytest.mark.parametrize("scope", SCOPES, ids=lambda s: s.kind)
def test_runner_listing_pages_as_the_client_asks(scope):
    """The prune's online check and every listing ask for page and limit on the runners list."""
    operation = load("v15.0.3")["paths"][unquote(scope.runners_path)]["get"]
    assert {"page", "limit"} <= {p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"}
