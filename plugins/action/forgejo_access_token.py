# Copyright: (c) foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs forgejo_access_token and hides its whole result from every output when it carries a token."""

from __future__ import annotations

from ansible_collections.foundation.runners.plugins.plugin_utils._censor_tokens import CensoringAction


class ActionModule(CensoringAction):
    pass
