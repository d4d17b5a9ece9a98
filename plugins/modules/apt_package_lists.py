#!/usr/bin/python
# Copyright: (c) foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: apt_package_lists
short_description: Refresh apt's package lists when they cannot serve the packages about to be installed
version_added: 0.1.0
description:
  - Runs C(apt-get update) when the package lists are empty, when apt has no installation candidate for one of
    O(packages), or when the last successful update is older than O(valid_time).
  - Unlike C(ansible.builtin.apt) with C(cache_valid_time), the decision does not rest on the modification time
    of C(/var/lib/apt/lists). A freshly built image whose lists were removed, or whose lists predate a newly added
    repository, is refreshed whatever its age.
  - After a successful update it touches C(/var/lib/apt/periodic/update-success-stamp), the stamp that
    C(apt.systemd.daily) keeps, so that the next run measures the age from it.
  - Fails, naming them, when packages still have no candidate after the refresh.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - foundation.runners.attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode the module reports whether it would refresh and changes nothing.
      - Roles that need the lists to preview installs run it with C(check_mode=false), since the lists are not
        configuration.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: A second run within O(valid_time) finds candidates for every package and does not refresh.
options:
  packages:
    description:
      - Packages that are about to be installed. Version or release suffixes (C(=1.2), C(/bookworm)) are ignored.
    type: list
    elements: str
    default: []
  valid_time:
    description:
      - Seconds after which the lists are refreshed even when every package has a candidate. V(0) refreshes on
        every run.
    type: int
    default: 3600
requirements:
  - apt (C(apt-get) and C(apt-cache)) on the managed host.
author:
  - Foundation Runners maintainers (@foundation-runners)
"""

EXAMPLES = r"""
- name: Refresh the package lists if they cannot serve docker.io
  foundation.runners.apt_package_lists:
    packages: [docker.io, apparmor]
  check_mode: false
  changed_when: false

- name: Install the Docker engine
  ansible.builtin.apt:
    name: [docker.io, apparmor]
"""

RETURN = r"""
updated:
  description: Whether C(apt-get update) ran (or, in check mode, would run).
  returned: always
  type: bool
reason:
  description: Why the lists were (or would be) refreshed, or why they were not.
  returned: always
  type: str
  sample: the package lists are empty
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.foundation.runners.plugins.module_utils._apt_lists import AptLists, AptListsError


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "packages": {"type": "list", "elements": "str", "default": []},
            "valid_time": {"type": "int", "default": 3600},
        },
        supports_check_mode=True,
    )
    if module.params["valid_time"] < 0:
        module.fail_json(msg=f"valid_time must be 0 or more seconds, got {module.params['valid_time']}")
    apt = AptLists(module.run_command)
    try:
        packages = [AptLists.package_name(p) for p in module.params["packages"]]
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    missing: list[str] = []
    try:
        reason = apt.refresh_reason(packages, module.params["valid_time"])
        if reason is None:
            module.exit_json(changed=False, updated=False, reason="the lists are recent and hold every package")
        if not module.check_mode:
            apt.update(reason)
            missing = apt.missing(packages)
    except AptListsError as exc:
        module.fail_json(msg=str(exc))
    if missing:
        module.fail_json(
            msg=f"apt has no installation candidate for {', '.join(missing)} even after refreshing the package "
            "lists: check the apt sources (and the proxy) of this host",
            updated=True,
            reason=reason,
        )
    module.exit_json(changed=True, updated=True, reason=reason)


if __name__ == "__main__":
    main()
