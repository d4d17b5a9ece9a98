# Private to foundation.runners: not a public API, may change without notice.
# Copyright: (c) foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A user's own access tokens (/users/{name}/tokens, Forgejo 7 to 15 and Gitea): list, create, delete."""

from __future__ import annotations

import typing as t
from urllib.parse import quote

from ansible_collections.foundation.runners.plugins.module_utils._forgejo_client import ForgejoClient


def normalised_scopes(scopes: t.Iterable[str]) -> list[str]:
    """The scopes as the forge keeps them: write:X implies read:X, and all implies every other one."""
    given = {s.strip() for s in scopes if s.strip()}
    if "all" in given:
        return ["all"]
    implied = {"read:" + s.split(":", 1)[1] for s in given if s.startswith("write:")}
    return sorted(given - implied)


class TokenStore:
    def __init__(self, client: ForgejoClient, user: str):
        self.client = client
        self.path = f"/users/{quote(user, safe='')}/tokens"

    def named(self, name: str) -> dict[str, t.Any] | None:
        found = [tok for tok in self.client.get_paged(self.path) if tok.get("name") == name]
        return found[0] if found else None

    def create(self, name: str, scopes: list[str]) -> dict[str, t.Any]:
        return self.client.request("POST", self.path, body={"name": name, "scopes": scopes})[0] or {}

    def delete(self, token_id: int) -> None:
        self.client.request("DELETE", f"{self.path}/{token_id}")


def public(token: dict[str, t.Any] | None) -> dict[str, t.Any] | None:
    """What may be shown of a token: never its value."""
    if token is None:
        return None
    keep = ("id", "name", "scopes", "token_last_eight")
    return {k: token.get(k) for k in keep} | {"scopes": normalised_scopes(token.get("scopes") or [])}
