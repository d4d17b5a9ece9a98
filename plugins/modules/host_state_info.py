#!/usr/bin/python
# Copyright: (c) foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: host_state_info
short_description: Read in one call whether files, packages, users and Docker images are as declared
version_added: 0.1.0
description:
  - Reads what a role's file, package, user and image tasks would find on a host, and says per item how it
    differs from what is declared. A role runs it once and skips the tasks whose items are already in place.
  - Where a host is slow to reach (a runner VM under emulation, a host across a jump), one read replaces a round
    trip per task of a converged host.
  - It compares the same properties the writing tasks set (content checksum, type, owner, group, mode; home,
    shell, supplementary groups, a locked password; an installed package; an image present in the engine).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - foundation.runners.attributes
attributes:
  check_mode:
    support: full
    details: It only reads, so it runs the same in check mode.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: It never changes the host.
options:
  files:
    description: Paths and the state they are declared in.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: The absolute path.
        type: path
        required: true
      state:
        description: What is declared at O(files[].path).
        type: str
        choices: [file, directory, absent]
        default: file
      owner:
        description: The owner's name; not compared when omitted.
        type: str
      group:
        description: The group's name; not compared when omitted.
        type: str
      mode:
        description: The octal mode, as a string (V("0640")); not compared when omitted.
        type: str
      checksum:
        description:
          - The content's checksum as C(<algorithm>:<hex digest>) (C(sha1) or C(sha256)), the form
            C(ansible.builtin.get_url) takes; not compared when omitted.
          - For a template, the controller's rendering of it, for example
            C("sha1:{{ lookup('ansible.builtin.template', 'x.j2') | hash('sha1') }}").
        type: str
      lines:
        description:
          - Lines a C(ansible.builtin.lineinfile) task with O(files[].lines[].regexp) keeps in the file. Each is in
            place where the last line matching its regexp is the line itself. No line of the file is returned.
        type: list
        elements: dict
        version_added: 0.3.0
        suboptions:
          regexp:
            description: The Python regular expression that finds the line, as lineinfile's C(regexp).
            type: str
            required: true
          line:
            description: The line as it must read.
            type: str
            required: true
  packages:
    description: Debian packages declared installed.
    type: list
    elements: str
    default: []
  users:
    description: Local users and what is declared of them.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The user's name.
        type: str
        required: true
      home:
        description: The home directory; not compared when omitted.
        type: path
      shell:
        description: The login shell; not compared when omitted.
        type: path
      groups:
        description: Groups the user must be in (as its primary group or a supplementary one).
        type: list
        elements: str
      password_locked:
        description: Whether the password field must start with C(!); not compared when omitted.
        type: bool
  images:
    description: Docker image names or ids whose presence in the local engine is read.
    type: list
    elements: str
    default: []
  units:
    description:
      - systemd units whose state is read (C(ActiveState) and C(UnitFileState)), so that a role can skip a start
        or an enable that would change nothing.
    type: list
    elements: str
    default: []
  contents:
    description:
      - Paths of small public text files whose content is returned, such as an ssh host's public key.
      - Never give a secret's path here; the content is returned in the clear.
    type: list
    elements: path
    default: []
  json_fields:
    description:
      - JSON files whose named top-level fields are returned, such as a runner's id and uuid in its C(.runner).
      - Only the named fields leave the host; never name a field that holds a secret (the C(.runner)'s token).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: The JSON file's absolute path.
        type: path
        required: true
      fields:
        description: The top-level fields whose values are returned.
        type: list
        elements: str
        required: true
  free_space:
    description:
      - Paths whose file system's free space is read, as C(df) reports it (the bytes left to unprivileged writers;
        a symlink is followed), so that a role can check room for its data without a command.
    type: list
    elements: path
    default: []
    version_added: 0.3.0
requirements:
  - C(dpkg-query) where O(packages) is given; C(docker) where O(images) is given (without it no image is present);
    C(systemctl) where O(units) is given.
  - Root, to read C(/etc/shadow) for O(users[].password_locked).
author:
  - Foundation Runners maintainers (@foundation-runners)
"""

EXAMPLES = r"""
- name: Read the runner's software and configuration in one call
  foundation.runners.host_state_info:
    files:
      - path: /usr/local/bin/forgejo-runner
        owner: root
        mode: "0755"
        checksum: "sha256:{{ runner_sha256 }}"
      - path: /var/lib/forgejo-runner/config.yml
        checksum: "sha1:{{ lookup('ansible.builtin.template', 'config.yml.j2') | hash('sha1') }}"
    packages: [docker.io]
    users:
      - name: forgejo-runner
        groups: [docker]
        password_locked: true
    images: [node:20-bookworm]
  register: state

- name: Write the configuration where it differs
  ansible.builtin.template:
    src: config.yml.j2
    dest: /var/lib/forgejo-runner/config.yml
    mode: "0640"
  when: state.files['/var/lib/forgejo-runner/config.yml'].differences | length > 0
"""

RETURN = r"""
files:
  description: Per path, what was found and how it differs from the declaration (empty when in place).
  returned: always
  type: dict
  sample: {"/etc/x": {"exists": true, "type": "file", "owner": "root", "group": "root", "mode": "0644",
           "differences": ["mode 0600, not 0644"]}}
packages:
  description: Per package, whether it is installed.
  returned: always
  type: dict
  sample: {"docker.io": true}
users:
  description: Per user, what was found and how it differs from the declaration.
  returned: always
  type: dict
  sample: {"forgejo-runner": {"exists": true, "home": "/var/lib/forgejo-runner", "shell": "/usr/sbin/nologin",
           "groups": ["docker"], "password_locked": true, "differences": []}}
images:
  description: Per image, its id in the local engine, or null when it is not there.
  returned: always
  type: dict
units:
  description: Per unit of O(units), its C(ActiveState) and C(UnitFileState), each C(unknown) where systemctl
    cannot tell.
  returned: always
  type: dict
  sample: {"forgejo-runner.service": {"active": "active", "enabled": "enabled"}}
contents:
  description: Per path of O(contents), the file's text, or null when it does not exist.
  returned: always
  type: dict
json:
  description: Per path of O(json_fields), the named fields found in the file, or null where the file is missing or
    not a JSON object.
  returned: always
  type: dict
  sample: {"/var/lib/forgejo-runner/.runner": {"id": 7, "uuid": "4b3d...", "name": "runner-02"}}
free_space:
  description: Per path of O(free_space), the free bytes of its file system, or null where the path does not resolve.
  returned: always
  type: dict
  sample: {"/var/lib/libvirt/images": 57671077888}
differing:
  description: The paths of O(files) and the names of O(users) that differ from their declaration, in the order
    given, so that a role can run a writing task only where its item is listed.
  returned: always
  type: list
  elements: str
  sample: ["/etc/x"]
in_place:
  description: Whether every declared item is as declared.
  returned: always
  type: bool
"""

import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.foundation.runners.plugins.module_utils import _host_state as state

FILE_SPEC = {
    "path": {"type": "path", "required": True},
    "state": {"type": "str", "choices": ["file", "directory", "absent"], "default": "file"},
    "owner": {"type": "str"},
    "group": {"type": "str"},
    "mode": {"type": "str"},
    "checksum": {"type": "str"},
    "lines": {
        "type": "list",
        "elements": "dict",
        "options": {"regexp": {"type": "str", "required": True}, "line": {"type": "str", "required": True}},
    },
}
USER_SPEC = {
    "name": {"type": "str", "required": True},
    "home": {"type": "path"},
    "shell": {"type": "path"},
    "groups": {"type": "list", "elements": "str"},
    "password_locked": {"type": "bool", "no_log": False},
}


JSON_SPEC = {
    "path": {"type": "path", "required": True},
    "fields": {"type": "list", "elements": "str", "required": True},
}


def check_input(module: AnsibleModule) -> None:
    for spec in module.params["files"]:
        try:
            if spec["checksum"]:
                state.parse_checksum(spec["checksum"])
            if spec["mode"]:
                int(spec["mode"], 8)
            for item in spec["lines"] or []:
                re.compile(item["regexp"])
        except (ValueError, re.error) as exc:
            module.fail_json(msg=f"files: {spec['path']}: {exc}")


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "files": {"type": "list", "elements": "dict", "default": [], "options": FILE_SPEC},
            "packages": {"type": "list", "elements": "str", "default": []},
            "users": {"type": "list", "elements": "dict", "default": [], "options": USER_SPEC},
            "images": {"type": "list", "elements": "str", "default": []},
            "units": {"type": "list", "elements": "str", "default": []},
            "contents": {"type": "list", "elements": "path", "default": []},
            "json_fields": {"type": "list", "elements": "dict", "default": [], "options": JSON_SPEC},
            "free_space": {"type": "list", "elements": "path", "default": []},
        },
        supports_check_mode=True,
    )
    check_input(module)
    params = module.params
    docker = module.get_bin_path("docker") if params["images"] else None
    result = {
        "files": {spec["path"]: state.file_state(spec) for spec in params["files"]},
        "packages": {name: state.package_installed(module.run_command, name) for name in params["packages"]},
        "users": {spec["name"]: state.user_state(spec) for spec in params["users"]},
        "images": {
            name: state.docker_image_id(module.run_command, docker, name) if docker else None
            for name in params["images"]
        },
        "contents": {path: state.read_text(path) for path in params["contents"]},
        "json": {spec["path"]: state.json_values(spec["path"], spec["fields"]) for spec in params["json_fields"]},
        "free_space": {path: state.free_bytes(path) for path in params["free_space"]},
    }
    systemctl = module.get_bin_path("systemctl") if params["units"] else None
    result["units"] = {name: state.unit_state(module.run_command, systemctl, name) for name in params["units"]}
    result["differing"] = [
        key for table in ("files", "users") for key, found in result[table].items() if found["differences"]
    ]
    result["in_place"] = not result["differing"] and all(result["packages"].values()) and all(result["images"].values())
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
