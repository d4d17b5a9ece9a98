# Private to foundation.runners: not a public API, may change without notice.
# Copyright: (c) foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action of the modules that return tokens: their whole result is hidden from every output when it
carries one."""

from __future__ import annotations

from ansible.plugins.action import ActionBase


def carries_token(result: dict) -> bool:
    runner = result.get("runner")
    return bool(result.get("token") or (isinstance(runner, dict) and runner.get("token")))


class CensoringAction(ActionBase):
    """A task that forgets no_log still prints no token: the result is marked as no_log would mark it.

    The registered variable keeps the token, so the caller can use it; only the output is censored.
    """

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        result.update(self._execute_module(module_name=self._task.resolved_action, task_vars=task_vars))
        if carries_token(result):
            result["_ansible_no_log"] = True
        return result
