# Copyright: foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  uri:
    description:
      - libvirt connection URI of the host that runs the domains.
      - Remote URIs such as C(qemu+ssh://root@host/system) work; images and seeds travel through
        libvirt storage-volume streams, never through file paths on that host.
    type: str
    default: qemu:///system
requirements:
  - libvirt-python (the C(libvirt) Python binding) on the host that runs the module
"""
