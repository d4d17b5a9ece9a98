# Copyright: (c) foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # Attributes every module of the collection declares; each module adds its own support levels.
    DOCUMENTATION = r"""
attributes:
  platform:
    platforms: posix
  idempotent:
    description: Whether a second run with the same arguments reports no change.
"""

    # The support levels of a module that only reads.
    INFO = r"""
attributes:
  check_mode:
    support: full
    details: The module only reads, so check mode runs it in full.
  diff_mode:
    support: N/A
    details: The module changes nothing.
  idempotent:
    support: full
"""
