"""Bad-input cases every forgejo_* module must turn into a clear error that changes nothing."""

from __future__ import annotations

from fake_forgejo import ADMIN_TOKEN, READ_ADMIN_TOKEN, USER_TOKEN

# (case id, args overriding the defaults, expected fragment of msg); "{url}" is the fake server's URL.
COMMON_BAD_INPUT = [
    ("unreachable", {"api_url": "http://127.0.0.1:9", "retries": 0}, "cannot connect"),
    ("tls_failure", {"api_url": "https://{host}"}, "TLS failure"),
    ("bad_token", {"api_token": "wrong"}, "[401] invalid username, password or token"),
    ("missing_scope", {"api_token": USER_TOKEN}, "[403] token does not have at least one of required scope(s)"),
    ("unknown_org", {"scope": "org", "org": "nope"}, "/orgs/nope/actions/runners"),
    ("unknown_repo", {"scope": "repo", "repo": "fleet/nope"}, "[404]"),
    ("unknown_user_repo", {"scope": "repo", "repo": "ghost/ci"}, "[404]"),
    ("repo_not_owner_name", {"scope": "repo", "repo": "justname"}, "repo must be given as OWNER/NAME"),
    ("org_missing", {"scope": "org"}, "scope is org but all of the following are missing: org"),
    ("org_with_instance", {"org": "fleet"}, "org is only used with scope=org"),
    ("repo_with_org_scope", {"scope": "org", "org": "fleet", "repo": "fleet/ci"}, "repo is only used with scope=repo"),
    ("bad_scope", {"scope": "galaxy"}, "value of scope must be one of"),
    ("not_a_url", {"api_url": "forge.example.org"}, "api_url must be an http:// or https:// URL"),
    ("server_error", {"_fail": [500], "retries": 0}, "[500] injected failure"),
    ("plain_http_refused", {"allow_insecure_http": False}, "is plain http, which would send the tokens readable"),
]


def build_args(forge, overrides, base):
    args = {"api_url": forge.url, "api_token": ADMIN_TOKEN, "allow_insecure_http": True, **base}
    for key, value in overrides.items():
        if key == "_fail":
            forge.fail_next = list(value)
            continue
        args[key] = (
            value.format(url=forge.url, host=forge.url.removeprefix("http://")) if isinstance(value, str) else value
        )
    return args


__all__ = ["ADMIN_TOKEN", "COMMON_BAD_INPUT", "READ_ADMIN_TOKEN", "USER_TOKEN", "build_args"]
