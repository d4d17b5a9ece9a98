# Copyright: foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """The cloud-init NoCloud seed options of libvirt_cloudinit_vm."""

    DOCUMENTATION = r"""
options:
  seed:
    description:
      - When not given, a new domain gets a seed built from the seed options, and the seed of an existing
        domain is left as it is (neither compared, rebuilt nor re-created).
      - V(present) keeps a NoCloud seed attached as a cdrom; its content is rebuilt from the options and
        rewritten when it differs, and re-created when it was removed.
      - V(absent) detaches the seed cdrom (live and in the persistent configuration) and deletes the seed
        volume, so provisioning secrets do not stay on the host. The seed options must not be given then.
      - Because the instance-id is stable, cloud-init does not run first-boot modules again in either case.
    type: str
    choices: [present, absent]
  user_data:
    description:
      - cloud-init user-data as a dictionary; rendered as YAML after a C(#cloud-config) header.
      - It only goes into the seed ISO, never into the domain XML or the module's return values.
      - The option is C(no_log), so Ansible masks every string found in it wherever it appears in the output
        (a user name such as C(lab) also masks a pool called C(lab)).
    type: dict
  meta_data:
    description:
      - Extra cloud-init meta-data. C(instance-id) and C(local-hostname) default to O(instance_id) and O(name).
    type: dict
  network_config:
    description:
      - cloud-init network-config (version 1 or 2) as a dictionary. Mutually exclusive with O(ip_address).
      - When neither is given, the seed has no network-config and the image's default (DHCP) applies.
    type: dict
  ip_address:
    description:
      - Static address in CIDR notation (V(198.51.100.20/24)). Generates a network-config v2 whose ethernet
        entry matches the NIC by its MAC address, so the guest's interface name does not matter.
    type: str
  gateway:
    description: Default gateway for O(ip_address).
    type: str
  nameservers:
    description: DNS servers for O(ip_address).
    type: list
    elements: str
  keep_instance:
    description:
      - "Put a vendor-data script into the seed that writes C(manual_cache_clean: true) to
        C(/etc/cloud/cloud.cfg.d/90-foundation-runners-keep-instance.cfg) on first boot."
      - Without it, a guest whose seed was removed (O(seed=absent)) finds no datasource at its next boot,
        cloud-init falls back to C(DataSourceNone), takes it for a new instance and replaces a static
        network config by DHCP. Measured with the lab image; images whose ds-identify disables cloud-init
        when no datasource is found are not affected.
      - Set V(false) to leave vendor-data out (for example when the image's cloud-init disables vendor-data).
    type: bool
    default: true
  instance_id:
    description:
      - cloud-init instance-id. Defaults to C(iid-<name>), stable across runs so re-runs never trigger
        a new first boot.
    type: str
"""
