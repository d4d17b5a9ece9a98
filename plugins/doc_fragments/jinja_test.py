# Copyright: foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The one input of the collection's Jinja tests.
    DOCUMENTATION = r"""
options:
  _input:
    description: The value to test.
    type: raw
    required: true
"""
