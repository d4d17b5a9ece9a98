#!/usr/bin/python
# Copyright: foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: libvirt_cloudinit_vm
short_description: Manage a libvirt guest built from a cloud image with a cloud-init NoCloud seed
version_added: 0.1.0
description:
  - Imports a cloud image once into a libvirt storage pool, gives each guest a qcow2 copy-on-write
    overlay on it, builds a cloud-init NoCloud seed ISO (label C(cidata)) in Python, uploads both
    through libvirt storage-volume streams, and defines, starts, stops or removes the domain.
  - Works with local and remote libvirt URIs alike, because nothing is passed as a file path on the
    libvirt host.
  - Domains it creates carry metadata in the XML namespace
    C(https://foundation.runners/libvirt_cloudinit_vm/1) recording the pool, the base volume, the overlay,
    the seed and a spec hash. A domain of the same name without that metadata is never touched, unless
    O(adopt=true).
  - B(Adoption.) With O(adopt=true), a domain without that metadata (built by another tool) is taken over. Its
    first disk must be a volume of a libvirt storage pool and is kept as the domain's disk, never recreated;
    the domain gets the metadata and, when given, O(nwfilter); nothing else is changed. How its size, NIC,
    address and pool differ from the options is returned in RV(adoption) and warned about; from the next run on
    it is managed like a domain the module built, so the options are applied then. No seed is attached, and
    O(base_image) is not used. O(state=absent) never removes a domain without the metadata.
  - B(Drift policy.) For an existing domain, O(vcpus), O(memory), O(bridge), O(network), O(mac),
    O(domain_type), O(guest_agent) and O(nwfilter) are compared with the persistent configuration when given
    (options left out are kept as they are). Differences are written to the persistent configuration. A running
    domain gets them at its next cold boot (O(nwfilter) at once), and the module returns RV(restart_required=true)
    on every run until then, unless O(restart_on_change=true), which shuts the domain down (ACPI,
    O(shutdown_timeout), O(force)) and starts it again.
  - A failed run deletes every object it created itself, newest first, and leaves everything that existed
    before as it was.
  - B(Crash consistency.) A run can also die without that rollback (the controller is killed, libvirtd dies
    mid-run). Creation therefore records its intent first - it defines the domain, inactive, with
    C(phase=creating) and the names of its overlay and seed in the metadata, after checking that no volume of
    those names exists - and only then imports the base image, creates the overlay, uploads the seed and
    starts the domain. C(phase) is dropped when all of that is done; removal deletes the volumes before the
    domain, so the record is the last thing to go.
  - B(Recovery rules.) A domain found with C(phase=creating) is the leftover of an interrupted run. With
    O(state=present), O(state=running) or O(state=stopped), a domain that never started is discarded with its
    recorded volumes and created again from the current options (its disks hold nothing yet); one that was
    already running had all its volumes complete, so only its record is completed. With O(state=absent), the
    domain and its recorded volumes are removed. A base volume whose import was interrupted (recorded as
    C(base-import) with the image's SHA-256) is verified against that checksum and deleted when it does not
    match; a complete base volume is kept.
  - A volume named like this VM's overlay or seed without a domain is used or removed only when its content
    proves it a leftover of this module for this VM - an overlay in qcow2 format backed by a
    C(base-sha256-*) volume (or O(base_volume)) of the same pool, a seed that is an ISO labelled C(cidata)
    whose meta-data has this VM's instance-id. Any other volume of such a name makes creation fail with a
    message saying how to tell the two apart, and O(state=absent) leaves it in place with a warning.
  - The environment variable C(FOUNDATION_RUNNERS_FAULT) exists for tests only. Set to one of
    C(after_define), C(after_base_import), C(after_overlay_create), C(after_seed_upload), C(after_start), it
    injects a failure at that point of a creation; C(POINT:kill) kills the module's process with SIGKILL there
    instead, and C(POINT:wait:FILE) creates FILE and waits there until FILE is removed.
author:
  - Foundation Runners maintainers (@foundation-runners)
extends_documentation_fragment:
  - foundation.runners.libvirt
  - foundation.runners.cloudinit_seed
  - foundation.runners.libvirt_base_image
  - foundation.runners.libvirt_nic
  - ansible.builtin.action_common_attributes
  - foundation.runners.attributes
attributes:
  check_mode:
    support: full
    details:
      - Nothing is created, changed or removed. The base image is neither downloaded nor hashed when
        its volume already exists.
      - When the base volume is missing, the image is prepared as in a real run (an https O(base_image) is
        downloaded to a temporary directory, its checksum verified and the image inspected) but not uploaded,
        so check mode fails where the real run would.
  diff_mode:
    support: full
    details:
      - The whole persistent domain XML before and after, with headers, and the power state when it changes.
  idempotent:
    support: full
options:
  name:
    description:
      - Name of the domain. Also the default C(local-hostname) and the source of the default instance-id
        and MAC address.
      - 1 to 63 characters out of letters, digits, C(.), C(_) and C(-), starting with a letter or a digit.
    type: str
    required: true
  state:
    description:
      - V(present) defines the domain without changing its power state (a new domain stays off).
      - V(running) defines it and makes sure it runs.
      - V(stopped) defines it and shuts it down gracefully (ACPI), see O(shutdown_timeout) and O(force).
      - V(absent) powers the domain off, undefines it and deletes its overlay and seed volumes. The shared
        base volume is never deleted.
    type: str
    choices: [present, running, stopped, absent]
    default: present
  vcpus:
    description:
      - Number of virtual CPUs, at least 1. When creating and not given, 1.
    type: int
  memory:
    description:
      - Memory as an integer in MiB (V(2048)) or a string with a binary unit (V(2GiB), V(512MiB)).
        At least 64 MiB. When creating and not given, V(1GiB).
    type: raw
  domain_type:
    description:
      - libvirt domain type. Use V(qemu) (TCG emulation) where KVM is not usable. When creating and not
        given, V(kvm).
    type: str
    choices: [kvm, qemu]
  guest_agent:
    description:
      - Add the qemu guest agent channel (C(org.qemu.guest_agent.0)). When creating and not given, V(false).
    type: bool
  autostart:
    description:
      - Start the domain when the libvirt host boots. When creating and not given, V(false).
    type: bool
  shutdown_timeout:
    description: Seconds to wait for an ACPI shutdown before giving up (or powering off with O(force)).
    type: int
    default: 120
  force:
    description: Power the domain off when it has not shut down within O(shutdown_timeout).
    type: bool
    default: false
  adopt:
    description:
      - Take over a domain of this name that was not built by this module (see the adoption notes above). It
        has no effect on domains that carry the metadata, so it can stay set after the adoption.
    type: bool
    default: false
  restart_on_change:
    description:
      - Restart a running domain (ACPI shutdown, then start) when a change to its persistent configuration
        is pending. Without it the module returns RV(restart_required=true).
    type: bool
    default: false
notes:
  - The seed cdrom sits on a virtio-scsi controller so it can be detached from a running domain.
  - The serial console is a PTY (C(virsh console NAME) works); ACPI is on so a shutdown request reaches the guest.
  - Changing the base image of an existing domain is not done (its disk would be lost); the module warns
    and keeps the disk. Use O(state=absent) first to rebuild.
seealso:
  - name: cloud-init NoCloud datasource
    description: The seed format this module writes.
    link: https://docs.cloud-init.io/en/latest/reference/datasources/nocloud.html
  - name: libvirt network filters
    description: The C(clean-traffic) filter and the variables O(nwfilter.parameters) sets.
    link: https://libvirt.org/formatnwfilter.html
requirements:
  - pycdlib
  - PyYAML
"""

EXAMPLES = r"""
- name: A runner guest on a bridge with a static address
  foundation.runners.libvirt_cloudinit_vm:
    name: runner01
    state: running
    uri: qemu+ssh://root@kvm01.example.org/system
    pool: default
    base_image: https://cloud-images.ubuntu.com/releases/noble/release/ubuntu-24.04-server-cloudimg-amd64.img
    base_checksum: "sha256:{{ ubuntu_2404_sha256 }}"
    disk_size: 40GiB
    vcpus: 4
    memory: 8GiB
    bridge: br0
    ip_address: 198.51.100.21/24
    gateway: 198.51.100.1
    nameservers: [198.51.100.1]
    # the guest cannot take another host's MAC or IP address (IP defaults to ip_address's)
    nwfilter:
      name: clean-traffic
    autostart: true
    user_data:
      users:
        - name: ops
          sudo: ALL=(ALL) NOPASSWD:ALL
          ssh_authorized_keys: ["{{ ops_ssh_key }}"]
      runcmd:
        - [systemctl, enable, --now, forgejo-runner]

- name: Remove the seed (it carries secrets) once the guest is provisioned
  foundation.runners.libvirt_cloudinit_vm:
    name: runner01
    state: running
    seed: absent

- name: More memory; applied at the next boot, or now with restart_on_change
  foundation.runners.libvirt_cloudinit_vm:
    name: runner01
    state: running
    memory: 12GiB
    restart_on_change: true
    shutdown_timeout: 180
    force: true

- name: A lab guest under TCG from a local image
  foundation.runners.libvirt_cloudinit_vm:
    name: lab01
    state: running
    domain_type: qemu
    pool: lab
    base_image: /var/tmp/debian-12-lab.qcow2
    bridge: br0
    ip_address: 198.51.100.31/24
    user_data:
      locale: false

- name: Remove the guest, its overlay and its seed (the base volume stays)
  foundation.runners.libvirt_cloudinit_vm:
    name: runner01
    state: absent
"""

RETURN = r"""
name:
  description: Name of the domain.
  returned: always
  type: str
  sample: runner01
uuid:
  description: UUID of the domain; null when it does not exist (or would only be created in check mode).
  returned: always
  type: str
  sample: 0b3f4d1e-8c9a-4b61-9a57-2f4e3f1c2d10
mac:
  description: MAC address of the NIC.
  returned: when the domain exists or would be created
  type: str
  sample: "52:54:00:5e:1a:c3"
state:
  description: Power state of the domain after the run (V(running), V(shutoff), ...), or V(absent).
  returned: always
  type: str
  sample: running
instance_id:
  description: cloud-init instance-id written to the seed.
  returned: when O(seed=present) and the domain exists or would be created
  type: str
  sample: iid-runner01
volumes:
  description:
    - Volumes of the domain. C(seed) is null when there is no seed.
    - Without O(seed), C(seed) names the seed while its volume or its cdrom is left, also after an interrupted
      removal, so that a removal can be skipped where it is null.
  returned: when the domain exists or would be created, and for O(state=absent) the volumes removed
  type: dict
  contains:
    pool:
      description: Storage pool.
      type: str
    base:
      description: Shared base volume (never deleted by the module).
      type: str
    overlay:
      description: The domain's qcow2 overlay.
      type: str
    seed:
      description: The NoCloud seed ISO volume.
      type: str
  sample: {pool: default, base: base-sha256-5c2b1f8e0d3a4b6c, overlay: runner01.qcow2, seed: runner01-seed.iso}
restart_required:
  description:
    - True when the persistent configuration differs from the running domain (see the drift policy).
  returned: always
  type: bool
  sample: false
changes:
  description: Managed fields that differed from the request (and were changed, or would be in check mode).
  returned: always
  type: list
  elements: str
  sample: [memory_mib]
pending:
  description: Managed fields whose new value waits for the next cold boot of the running domain.
  returned: always
  type: list
  elements: str
  sample: [memory_mib]
actions:
  description: What the module did (or would do in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: ["import base volume base-sha256-5c2b1f8e0d3a4b6c", "create overlay runner01.qcow2", "define domain"]
adoption:
  description:
    - What was adopted (or would be, in check mode), and how it differs from the options.
  returned: when a domain was adopted
  type: dict
  contains:
    domain: {description: The domain's name., type: str}
    uuid: {description: The domain's UUID., type: str}
    state: {description: The domain's state., type: str}
    disks:
      description: Its disks with target, path, pool, volume and capacity in bytes; the first one is kept.
      type: list
      elements: dict
    interfaces:
      description: Its NICs with type, source and MAC.
      type: list
      elements: dict
    addresses: {description: IPv4 addresses the host's ARP table shows for it., type: list, elements: str}
    differences:
      description: How it differs from the options, one line each.
      type: list
      elements: str
  sample:
    domain: foundation-runner-02
    disks: [{target: vda, path: /var/lib/libvirt/images/foundation-runner-02.qcow2, pool: images,
             volume: foundation-runner-02.qcow2, capacity: 107374182400}]
    interfaces: [{type: bridge, source: br0, mac: "52:54:00:12:34:56"}]
    differences: ["vcpus: 8 (declared 4)"]
rolled_back:
  description: On failure, the objects this run had created and then deleted again, newest first.
  returned: failure
  type: list
  elements: str
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.urls import fetch_url

from ansible_collections.foundation.runners.plugins.module_utils import _cloudinit_seed as cloudinit_seed
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_api as libvirt_api
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_vm_options as libvirt_vm_options
from ansible_collections.foundation.runners.plugins.module_utils._libvirt_api import LibvirtVmError
from ansible_collections.foundation.runners.plugins.module_utils._libvirt_vm import VmManager

libvirt = libvirt_api.libvirt


def main() -> None:
    module = AnsibleModule(
        argument_spec=libvirt_vm_options.argument_spec(),
        supports_check_mode=True,
        mutually_exclusive=libvirt_vm_options.MUTUALLY_EXCLUSIVE,
    )
    if libvirt_api.LIBVIRT_IMPORT_ERROR is not None:
        module.fail_json(
            msg=missing_required_lib("libvirt-python"), exception=_format(libvirt_api.LIBVIRT_IMPORT_ERROR)
        )
    if cloudinit_seed.PYCDLIB_IMPORT_ERROR is not None:
        module.fail_json(msg=missing_required_lib("pycdlib"), exception=_format(cloudinit_seed.PYCDLIB_IMPORT_ERROR))
    p = module.params
    manager = VmManager(
        p,
        check_mode=module.check_mode,
        fetch=lambda url: fetch_url(module, url, timeout=p["download_timeout"], ca_path=p["ca_path"]),
        tmpdir=lambda: module.tmpdir,
        warn=module.warn,
    )
    try:
        result = manager.run(libvirt_vm_options.validate_options(p))
    except LibvirtVmError as exc:
        done, failed = manager.rollback.run()
        msg = str(exc)
        if done:
            msg += f" (rolled back: {'; '.join(done)})"
        if failed:
            msg += f" (rollback FAILED for: {'; '.join(failed)})"
        module.fail_json(msg=msg, name=manager.name, rolled_back=done, rollback_failed=failed, actions=manager.actions)
    except libvirt.libvirtError as exc:
        done, failed = manager.rollback.run()
        module.fail_json(
            msg=f"libvirt call failed while managing domain {manager.name!r}: {libvirt_api.err(exc)}",
            exception=traceback.format_exc(),
            name=manager.name,
            rolled_back=done,
            rollback_failed=failed,
        )
    if module._diff and manager.diffs:
        result["diff"] = manager.diffs if len(manager.diffs) > 1 else manager.diffs[0]
    module.exit_json(**result)


def _format(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


if __name__ == "__main__":
    main()
