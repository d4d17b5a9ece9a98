# Private to foundation.runners: not a public API, may change without notice.
# Copyright: (c) foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A filter's logic, written without Ansible, as the filter Ansible calls."""

from __future__ import annotations

from typing import Any, Callable

from ansible.errors import AnsibleFilterError


def as_filter(name: str, logic: Callable[..., Any]) -> Callable[..., Any]:
    """logic as a filter: a ValueError it raises becomes an AnsibleFilterError that names the filter."""

    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return logic(*args, **kwargs)
        except ValueError as exc:
            raise AnsibleFilterError(f"{name}: {exc}") from exc

    return run
