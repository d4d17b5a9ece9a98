# Private to foundation.runners: not a public API, may change without notice.
# Copyright: (c) foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The forgejo_* modules' Ansible side: their shared options, and one run of the client with errors as fail_json."""

from __future__ import annotations

import typing as t

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.foundation.runners.plugins.module_utils._forgejo_client import (
    FeatureUnsupported,
    ForgejoClient,
    ForgejoError,
    Scope,
)

CONNECTION_ARGS: dict[str, dict[str, t.Any]] = {
    "api_url": {"type": "str", "required": True, "fallback": (env_fallback, ["FORGEJO_URL"])},
    "api_token": {"type": "str", "required": True, "no_log": True, "fallback": (env_fallback, ["FORGEJO_TOKEN"])},
    "validate_certs": {"type": "bool", "default": True},
    "allow_insecure_http": {
        "type": "bool",
        "default": False,
        "fallback": (env_fallback, ["FORGEJO_ALLOW_INSECURE_HTTP"]),
    },
    "timeout": {"type": "int", "default": 30},
    "retries": {"type": "int", "default": 3},
}

# A user's own login instead of a token: what creating an access token needs (Forgejo accepts only basic auth there).
LOGIN_ARGS: dict[str, dict[str, t.Any]] = {
    "api_username": {"type": "str", "required": True, "fallback": (env_fallback, ["FORGEJO_USERNAME"])},
    "api_password": {"type": "str", "required": True, "no_log": True, "fallback": (env_fallback, ["FORGEJO_PASSWORD"])},
}

SCOPE_ARGS: dict[str, dict[str, t.Any]] = {
    "scope": {"type": "str", "default": "instance", "choices": ["instance", "org", "user", "repo"]},
    "org": {"type": "str"},
    "repo": {"type": "str"},
}
SCOPE_REQUIRED_IF = [("scope", "org", ["org"]), ("scope", "repo", ["repo"])]


def forgejo_module(options: dict[str, dict[str, t.Any]], *, login: bool = False) -> AnsibleModule:
    """An AnsibleModule taking the connection and scope options plus the module's own; with login, the user's
    name and password instead of a token, and no scope."""
    if login:
        connection = {k: v for k, v in CONNECTION_ARGS.items() if k != "api_token"}
        return AnsibleModule(argument_spec={**connection, **LOGIN_ARGS, **options}, supports_check_mode=True)
    return AnsibleModule(
        argument_spec={**CONNECTION_ARGS, **SCOPE_ARGS, **options},
        required_if=SCOPE_REQUIRED_IF,
        supports_check_mode=True,
    )


# The option of the modules that need the runners API (Forgejo 15), for forges that do not have it yet.
ON_UNSUPPORTED_ARGS: dict[str, dict[str, t.Any]] = {
    "on_unsupported": {"type": "str", "default": "fail", "choices": ["fail", "skip"]},
}


def run(
    module: t.Any,
    action: t.Callable[[ForgejoClient, t.Any], dict[str, t.Any]],
    skipped: dict[str, t.Any] | None = None,
) -> None:
    """Build client and scope from the module's params, run action, and turn errors into fail_json.

    With ``on_unsupported=skip``, a server that lacks what the action needs ends the module unchanged, with
    ``supported=false``, the reason, and the ``skipped`` result (empty lists) instead of failing."""
    try:
        scope = Scope.from_params(module.params) if "scope" in module.params else None
        client = ForgejoClient(module.params)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    try:
        result = action(client, scope)
        client.close()
    except ForgejoError as exc:
        # The version, where it was read before the failing request: the forge answers, this request did not.
        known = {"server_version": client.version.raw} if client.version_read else {}
        module.fail_json(msg=str(exc), status=exc.status, url=exc.url, method=exc.method, **known)
    except FeatureUnsupported as exc:
        if module.params.get("on_unsupported") == "skip":
            module.exit_json(
                changed=False, supported=False, reason=str(exc), server_version=client.version.raw, **(skipped or {})
            )
        module.fail_json(msg=str(exc), server_version=client.version.raw)
    if "on_unsupported" in module.params:
        result["supported"] = True
    module.exit_json(**result)
