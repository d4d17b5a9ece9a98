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
    the seed and a spec hash. A domain of the same name without that metadata is never touched.
  - B(Drift policy.) For an existing domain, O(vcpus), O(memory), O(bridge), O(network), O(mac),
    O(domain_type) and O(guest_agent) are compared with the persistent configuration when given (options
    left out are kept as they are). Differences are written to the persistent configuration. A running
    domain gets them at its next cold boot, and the module returns RV(restart_required=true) on every run
    until then, unless O(restart_on_change=true), which shuts the domain down (ACPI, O(shutdown_timeout),
    O(force)) and starts it again.
  - A failed run deletes every object it created itself, newest first, and leaves everything that existed
    before as it was. The environment variable C(FOUNDATION_RUNNERS_FAULT) set to one of
    C(after_base_import), C(after_overlay_create), C(after_seed_upload), C(after_define), C(after_start)
    injects a failure at that point; it exists for tests only.
author:
  - Foundation Runners maintainers (@foundation-runners)
extends_documentation_fragment:
  - foundation.runners.libvirt
  - ansible.builtin.action_common_attributes
  - foundation.runners.attributes
attributes:
  check_mode:
    support: full
    details:
      - Nothing is created, changed or removed. The base image is neither downloaded nor hashed when
        its volume already exists.
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
  pool:
    description:
      - Storage pool for the base, overlay and seed volumes when creating a domain. An existing domain
        keeps the pool recorded in its metadata.
    type: str
    default: default
  base_image:
    description:
      - The cloud image, as a path on the host running the module or an C(https://) URL.
      - A URL needs O(base_checksum). The image is uploaded only when its volume is not yet in the pool.
      - qcow2 images and raw disk images with a partition table are accepted; anything else is refused.
      - Required to create a domain unless O(base_volume) names a volume that already exists.
    type: str
  base_checksum:
    description:
      - Checksum of O(base_image) as C(sha256:<64 hex digits>). Required for URLs, verified for local
        files when given.
    type: str
  base_volume:
    description:
      - Name of the base volume in the pool. Defaults to C(base-sha256-) followed by the first 16 hex digits
        of the image's SHA-256, so every guest of the same image shares one volume.
    type: str
  validate_certs:
    description: Verify the TLS certificate when downloading O(base_image) from an https URL.
    type: bool
    default: true
  download_timeout:
    description: Timeout in seconds for connecting to and reading from the O(base_image) URL.
    type: int
    default: 60
  disk_size:
    description:
      - Virtual size of the guest disk (the overlay), for example V(20GiB). A bare number is GiB.
      - Defaults to the virtual size of the base image and may not be smaller than it.
      - Growing an existing disk is applied (live with blockresize when the domain runs); shrinking is refused.
    type: raw
  vcpus:
    description:
      - Number of virtual CPUs, at least 1. When creating and not given, 1.
    type: int
  memory:
    description:
      - Memory as an integer in MiB (V(2048)) or a string with a binary unit (V(2GiB), V(512MiB)).
        At least 64 MiB. When creating and not given, V(1GiB).
    type: raw
  bridge:
    description:
      - Host bridge the NIC is attached to. Checked through libvirt's interface and node-device APIs.
      - Mutually exclusive with O(network). Creating a domain needs one of them.
    type: str
  network:
    description:
      - libvirt network the NIC is attached to. Mutually exclusive with O(bridge).
    type: str
  mac:
    description:
      - MAC address of the NIC. Defaults to C(52:54:00) followed by three bytes of the SHA-256 of O(name).
      - A MAC that another domain on the host uses is refused.
    type: str
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
  shutdown_timeout:
    description: Seconds to wait for an ACPI shutdown before giving up (or powering off with O(force)).
    type: int
    default: 120
  force:
    description: Power the domain off when it has not shut down within O(shutdown_timeout).
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
  description: Volumes of the domain. C(seed) is null when there is no seed.
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
rolled_back:
  description: On failure, the objects this run had created and then deleted again, newest first.
  returned: failure
  type: list
  elements: str
"""

import hashlib
import io
import os
import tempfile
import traceback
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.urls import fetch_url

from ansible_collections.foundation.runners.plugins.module_utils import _cloudinit_seed as seedlib
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt as lv
from ansible_collections.foundation.runners.plugins.module_utils._libvirt import LibvirtVmError

libvirt = lv.libvirt

SEED_OPTIONS = ("user_data", "meta_data", "network_config", "ip_address", "gateway", "nameservers", "instance_id")
MIN_MEMORY_MIB = 64


class VmManager:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.p = module.params
        self.check = module.check_mode
        self.rollback = lv.Rollback()
        self.actions: list[str] = []
        self.diffs: list[dict[str, str]] = []
        self.conn: Any = None
        self.name: str = self.p["name"]

    # ------------------------------------------------------------------ validation

    def validate(self) -> None:
        p = self.p
        lv.validate_name(self.name)
        if p["vcpus"] is not None and p["vcpus"] < 1:
            raise LibvirtVmError(f"vcpus={p['vcpus']} is invalid: a domain needs at least 1 vCPU")
        self.memory_mib = None
        if p["memory"] is not None:
            size = lv.parse_size(p["memory"], "MiB", "memory")
            if size % (1024 * 1024):
                raise LibvirtVmError(f"memory {p['memory']!r} is not a whole number of MiB")
            self.memory_mib = size // (1024 * 1024)
            if self.memory_mib < MIN_MEMORY_MIB:
                raise LibvirtVmError(f"memory {p['memory']!r} is too small: at least {MIN_MEMORY_MIB} MiB")
        self.disk_size = lv.parse_size(p["disk_size"], "GiB", "disk_size") if p["disk_size"] is not None else None
        self.mac = lv.normalize_mac(p["mac"]) if p["mac"] else None
        self.checksum = lv.parse_checksum(p["base_checksum"]) if p["base_checksum"] else None
        image = p["base_image"]
        self.image_is_url = bool(image) and "://" in image
        if self.image_is_url:
            if not image.lower().startswith("https://"):
                raise LibvirtVmError(f"base_image {image!r}: only local paths and https:// URLs are supported")
            if not self.checksum:
                raise LibvirtVmError(f"base_image {image} is a URL, so base_checksum (sha256:...) is required")
        if p["base_volume"] is not None and not lv.NAME_RE.match(p["base_volume"]):
            raise LibvirtVmError(f"base_volume {p['base_volume']!r} is not a valid volume name")
        if p["seed"] == "absent":
            given = [o for o in SEED_OPTIONS if p[o] is not None]
            if given:
                raise LibvirtVmError(f"seed=absent removes the seed, so {', '.join(given)} must not be given")
        if p["network_config"] is not None and p["ip_address"] is not None:
            raise LibvirtVmError("network_config and ip_address are mutually exclusive")
        for opt in ("gateway", "nameservers"):
            if p[opt] is not None and p["ip_address"] is None:
                raise LibvirtVmError(f"{opt} needs ip_address")
        if p["shutdown_timeout"] < 0:
            raise LibvirtVmError("shutdown_timeout must not be negative")
        if p["instance_id"] is not None and not p["instance_id"].strip():
            raise LibvirtVmError("instance_id must not be empty")
        if p["ip_address"] is not None:
            # validate early so nothing is created for a bad address
            try:
                seedlib.static_network_config(
                    self.mac or seedlib.derive_mac(self.name), p["ip_address"], p["gateway"], p["nameservers"]
                )
            except seedlib.SeedError as exc:
                raise LibvirtVmError(str(exc)) from exc

    # ------------------------------------------------------------------ helpers

    def act(self, text: str) -> None:
        self.actions.append(text)

    def build_seed(self, mac: str) -> tuple[bytes, str]:
        p = self.p
        network_config = p["network_config"]
        if network_config is None and p["ip_address"]:
            network_config = seedlib.static_network_config(mac, p["ip_address"], p["gateway"], p["nameservers"])
        try:
            iso, md = seedlib.build_seed(
                self.name,
                p["user_data"],
                p["meta_data"],
                network_config,
                p["instance_id"],
                keep_instance=p["keep_instance"],
            )
        except seedlib.SeedError as exc:
            raise LibvirtVmError(f"cannot build the cloud-init seed for {self.name}: {exc}") from exc
        return iso, md["instance-id"]

    def check_interface(self, itype: str, source: str) -> None:
        if itype == "bridge":
            found = lv.bridge_exists(self.conn, source)
            if found is False:
                raise LibvirtVmError(
                    f"bridge {source!r} not found on {self.conn.getURI()} (neither libvirt's interface nor "
                    "node-device API lists it)"
                )
        else:
            net = lv.lookup_network(self.conn, source)
            if not net.isActive():
                raise LibvirtVmError(f"libvirt network {source!r} on {self.conn.getURI()} is not active")

    def check_mac_free(self, mac: str) -> None:
        used = lv.macs_in_use(self.conn, exclude=self.name)
        if mac in used:
            raise LibvirtVmError(f"mac {mac} is already used by domain {used[mac]!r} on {self.conn.getURI()}")

    def wanted_interface(self) -> tuple[str, str] | None:
        if self.p["bridge"]:
            return "bridge", self.p["bridge"]
        if self.p["network"]:
            return "network", self.p["network"]
        return None

    # ------------------------------------------------------------------ base image

    def download(self, url: str) -> str:
        fd, path = tempfile.mkstemp(prefix="base-", suffix=".img", dir=self.module.tmpdir)
        digest = hashlib.sha256()
        resp, info = fetch_url(self.module, url, timeout=self.p["download_timeout"])
        if resp is None or info.get("status") != 200:
            os.close(fd)
            raise LibvirtVmError(f"download of base_image {url} failed: [{info.get('status')}] {info.get('msg')}")
        with os.fdopen(fd, "wb") as out:
            for chunk in iter(lambda: resp.read(lv.STREAM_CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != self.checksum:
            raise LibvirtVmError(
                f"checksum mismatch for base_image {url}: "
                f"expected sha256:{self.checksum}, got sha256:{digest.hexdigest()}"
            )
        return path

    def ensure_base(self, pool: Any) -> tuple[str, str, int, str | None]:
        """Return (volume name, format, virtual size, path) of the base volume, importing it when missing."""
        p = self.p
        image = p["base_image"]
        name = p["base_volume"]
        local_info = None
        if name is None:
            if not image:
                raise LibvirtVmError(f"creating domain {self.name!r} needs base_image (or an existing base_volume)")
            if self.image_is_url:
                sha = self.checksum
            else:
                local_info = lv.inspect_image(image)
                sha = lv.sha256_file(image)
                if self.checksum and sha != self.checksum:
                    raise LibvirtVmError(
                        f"checksum mismatch for base_image {image}: expected sha256:{self.checksum}, got sha256:{sha}"
                    )
            name = f"base-sha256-{sha[:16]}"
        vol = lv.lookup_volume(pool, name)
        if vol is not None:
            fmt = lv.volume_format(vol)
            return name, fmt, lv.volume_capacity(vol), vol.path()
        if not image:
            raise LibvirtVmError(
                f"base_volume {name!r} does not exist in pool {pool.name()!r} and base_image is not given"
            )
        if self.check:
            if local_info is None and not self.image_is_url:
                local_info = lv.inspect_image(image)
            self.act(f"import base volume {name} from {image}")
            return (
                name,
                local_info.format if local_info else "qcow2",
                local_info.virtual_size if local_info else 0,
                None,
            )
        path = image
        if self.image_is_url:
            path = self.download(image)
            local_info = lv.inspect_image(path)
        elif local_info is None:
            local_info = lv.inspect_image(path)
            if self.checksum and lv.sha256_file(path) != self.checksum:
                raise LibvirtVmError(f"checksum mismatch for base_image {image}: expected sha256:{self.checksum}")
        vol = lv.create_volume(pool, lv.volume_xml(name, local_info.file_size, "raw"), self.rollback)
        with open(path, "rb") as src:
            lv.upload_volume(self.conn, vol, src, local_info.file_size)
        self.act(f"import base volume {name} from {image}")
        try:
            pool.refresh(0)
        except libvirt.libvirtError:
            pass
        lv.fault_point("after_base_import")
        return name, local_info.format, local_info.virtual_size, vol.path()

    # ------------------------------------------------------------------ create

    def create(self, state: str) -> dict[str, Any]:
        p = self.p
        iface = self.wanted_interface()
        if iface is None:
            raise LibvirtVmError(f"creating domain {self.name!r} needs bridge or network")
        pool = lv.lookup_pool(self.conn, p["pool"])
        self.check_interface(*iface)
        mac = self.mac or seedlib.derive_mac(self.name)
        self.check_mac_free(mac)
        overlay_name = f"{self.name}.qcow2"
        seed_name = f"{self.name}-seed.iso" if p["seed"] != "absent" else None
        for vname in filter(None, (overlay_name, seed_name)):
            if lv.lookup_volume(pool, vname) is not None:
                raise LibvirtVmError(
                    f"volume {vname!r} already exists in pool {pool.name()!r} but domain {self.name!r} does not; "
                    "it was not created by this module for this domain, remove it first"
                )
        iso, instance_id = self.build_seed(mac) if seed_name else (b"", None)
        base_name, base_fmt, base_size, base_path = self.ensure_base(pool)
        capacity = base_size
        if self.disk_size is not None:
            if base_size and self.disk_size < base_size:
                raise LibvirtVmError(
                    f"disk_size {p['disk_size']} is smaller than the base image's virtual size ({base_size} bytes)"
                )
            capacity = self.disk_size
        spec = lv.DomainSpec(
            name=self.name,
            domain_type=p["domain_type"] or "kvm",
            vcpus=p["vcpus"] or 1,
            memory_mib=self.memory_mib or 1024,
            interface_type=iface[0],
            interface_source=iface[1],
            mac=mac,
            pool=pool.name(),
            base_volume=base_name,
            overlay_volume=overlay_name,
            seed_volume=seed_name,
            guest_agent=bool(p["guest_agent"]),
        )
        xml = lv.render_domain_xml(spec)
        self.diffs.append(
            {
                "before_header": f"domain {self.name} (absent)",
                "before": "",
                "after_header": f"domain {self.name}",
                "after": xml,
            }
        )
        self.act(f"create overlay {overlay_name} on {base_name}")
        if seed_name:
            self.act(f"upload seed {seed_name}")
        self.act(f"define domain {self.name}")
        final_state = "shutoff"
        if state == "running":
            self.act(f"start domain {self.name}")
            final_state = "running"
        result = {
            "uuid": None,
            "mac": mac,
            "instance_id": instance_id,
            "volumes": {"pool": spec.pool, "base": base_name, "overlay": overlay_name, "seed": seed_name},
            "changes": ["domain"],
        }
        if self.check:
            result["state"] = final_state
            return result
        lv.create_volume(pool, lv.volume_xml(overlay_name, capacity, "qcow2", base_path, base_fmt), self.rollback)
        lv.fault_point("after_overlay_create")
        if seed_name:
            seed_vol = lv.create_volume(pool, lv.volume_xml(seed_name, len(iso), "raw"), self.rollback)
            lv.upload_volume(self.conn, seed_vol, io.BytesIO(iso), len(iso))
            lv.fault_point("after_seed_upload")
        try:
            dom = self.conn.defineXML(xml)
        except libvirt.libvirtError as exc:
            raise LibvirtVmError(f"cannot define domain {self.name!r} on {self.conn.getURI()}: {lv.err(exc)}") from exc
        self.rollback.add(f"undefine domain {self.name}", lambda: self._undefine(dom))
        lv.fault_point("after_define")
        if p["autostart"]:
            dom.setAutostart(1)
        if state == "running":
            lv.start(dom)
            self.rollback.add(f"power off domain {self.name}", dom.destroy)
            lv.fault_point("after_start")
        result["uuid"] = dom.UUIDString()
        result["state"] = lv.domain_state(dom)
        return result

    @staticmethod
    def _undefine(dom: Any) -> None:
        flags = (
            libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
            | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
            | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
        )
        try:
            dom.undefineFlags(flags)
        except libvirt.libvirtError:
            dom.undefine()

    # ------------------------------------------------------------------ remove

    def remove(self, dom: Any, meta: dict[str, str]) -> dict[str, Any]:
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        self.diffs.append(
            {
                "before_header": f"domain {self.name}",
                "before": lv.canonical_xml(xml),
                "after_header": f"domain {self.name} (absent)",
                "after": "",
            }
        )
        pool = None
        try:
            pool = lv.lookup_pool(self.conn, meta.get("pool") or self.p["pool"])
        except LibvirtVmError as exc:
            self.module.warn(f"{exc}; the domain's volumes cannot be removed")
        vols = [v for v in (meta.get("overlay-volume"), meta.get("seed-volume")) if v]
        existing = [v for v in vols if pool is not None and lv.lookup_volume(pool, v) is not None]
        if dom.isActive():
            self.act(f"power off domain {self.name}")
        self.act(f"undefine domain {self.name}")
        for v in existing:
            self.act(f"delete volume {v}")
        volumes = {"pool": pool.name() if pool else None, "overlay": meta.get("overlay-volume") or None}
        volumes["seed"] = meta.get("seed-volume") or None
        volumes["base"] = meta.get("base-volume") or None
        result = {"uuid": dom.UUIDString(), "state": "absent", "volumes": volumes, "changes": ["domain"]}
        if self.check:
            return result
        try:
            if dom.isActive():
                dom.destroy()
            self._undefine(dom)
        except libvirt.libvirtError as exc:
            raise LibvirtVmError(f"cannot remove domain {self.name!r}: {lv.err(exc)}") from exc
        for v in existing:
            lv.delete_volume(pool, v)
        return result

    # ------------------------------------------------------------------ update

    def update(self, dom: Any, meta: dict[str, str], state: str) -> dict[str, Any]:
        p = self.p
        old_xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        cur = lv.domain_fields(old_xml)
        pool = lv.lookup_pool(self.conn, meta.get("pool") or p["pool"])
        iface = self.wanted_interface()
        want = dict(cur)
        if p["domain_type"] is not None:
            want["domain_type"] = p["domain_type"]
        if p["vcpus"] is not None:
            want["vcpus"] = p["vcpus"]
        if self.memory_mib is not None:
            want["memory_mib"] = self.memory_mib
        if iface is not None:
            want["interface_type"], want["interface_source"] = iface
        if self.mac is not None:
            want["mac"] = self.mac
        if p["guest_agent"] is not None:
            want["guest_agent"] = p["guest_agent"]
        fields = [
            k
            for k in ("domain_type", "vcpus", "memory_mib", "interface_type", "interface_source", "mac", "guest_agent")
            if want[k] != cur[k]
        ]
        if ("interface_type" in fields or "interface_source" in fields) and iface is not None:
            self.check_interface(*iface)
        if "mac" in fields:
            self.check_mac_free(want["mac"])
        self._warn_base(meta)
        seed_name = meta.get("seed-volume") or f"{self.name}-seed.iso"
        seed_kept = p["seed"] == "present" or (p["seed"] is None and bool(meta.get("seed-volume")))
        spec = lv.DomainSpec(
            name=self.name,
            domain_type=want["domain_type"],
            vcpus=want["vcpus"],
            memory_mib=want["memory_mib"],
            interface_type=want["interface_type"],
            interface_source=want["interface_source"],
            mac=want["mac"],
            pool=pool.name(),
            base_volume=meta.get("base-volume", ""),
            overlay_volume=meta.get("overlay-volume") or f"{self.name}.qcow2",
            seed_volume=seed_name if seed_kept else None,
            guest_agent=bool(want["guest_agent"]),
        )
        new_xml = lv.apply_fields(old_xml, spec, fields) if fields else lv.canonical_xml(old_xml)
        for f in fields:
            self.act(f"set {f}: {cur[f]} -> {want[f]}")
        active = bool(dom.isActive())
        live_xml = dom.XMLDesc(0) if active else None

        # seed
        seed_vol = lv.lookup_volume(pool, seed_name)
        cdrom_cfg = lv.find_cdrom(old_xml, seed_name) is not None
        cdrom_live = active and lv.find_cdrom(live_xml, seed_name) is not None
        instance_id = None
        seed_upload: bytes | None = None
        seed_delete = False
        if p["seed"] == "present":
            iso, instance_id = self.build_seed(want["mac"])
            if seed_vol is None:
                seed_upload = iso
                self.act(f"upload seed {seed_name}")
            else:
                cap = lv.volume_capacity(seed_vol)
                if cap != len(iso) or lv.download_volume(self.conn, seed_vol, cap) != iso:
                    seed_upload, seed_delete = iso, True
                    self.act(f"rewrite seed {seed_name} (content changed)")
            if not cdrom_cfg:
                self.act(f"attach seed cdrom {seed_name}")
            new_xml = lv.set_cdrom(new_xml, pool.name(), seed_name, present=True)
        elif p["seed"] == "absent":
            if cdrom_cfg or cdrom_live:
                self.act(f"detach seed cdrom {seed_name}")
            if seed_vol is not None:
                seed_delete = True
                self.act(f"delete seed volume {seed_name}")
            new_xml = lv.set_cdrom(new_xml, pool.name(), seed_name, present=False)
        want_meta = lv.spec_metadata(spec)
        if lv.read_metadata(dom) != want_meta:
            new_xml = lv.set_metadata_in_xml(new_xml, want_meta)
        before = lv.canonical_xml(old_xml)
        redefine = new_xml != before
        if redefine:
            self.diffs.append(
                {
                    "before_header": f"domain {self.name}",
                    "before": before,
                    "after_header": f"domain {self.name}",
                    "after": new_xml,
                }
            )
            if not any(a.startswith(("set ", "attach", "detach")) for a in self.actions):
                self.act("update domain metadata")

        # disk size
        overlay = lv.lookup_volume(pool, spec.overlay_volume)
        grow = None
        if self.disk_size is not None and overlay is not None:
            cap = lv.volume_capacity(overlay)
            if self.disk_size < cap:
                raise LibvirtVmError(
                    f"disk_size {p['disk_size']} is smaller than the current disk of {self.name!r} ({cap} bytes); "
                    "shrinking is not supported"
                )
            if self.disk_size > cap:
                grow = self.disk_size
                fields.append("disk_size")
                self.act(f"grow disk {spec.overlay_volume}: {cap} -> {grow} bytes")

        result: dict[str, Any] = {
            "uuid": dom.UUIDString(),
            "mac": want["mac"],
            "instance_id": instance_id,
            "volumes": {
                "pool": pool.name(),
                "base": spec.base_volume,
                "overlay": spec.overlay_volume,
                "seed": seed_name if seed_kept else None,
            },
            "changes": fields,
        }
        if not self.check:
            if seed_upload is not None:
                if seed_delete:
                    lv.delete_volume(pool, seed_name)
                vol = lv.create_volume(pool, lv.volume_xml(seed_name, len(seed_upload), "raw"), self.rollback)
                lv.upload_volume(self.conn, vol, io.BytesIO(seed_upload), len(seed_upload))
                lv.fault_point("after_seed_upload")
            if redefine:
                try:
                    self.conn.defineXML(new_xml)
                except libvirt.libvirtError as exc:
                    raise LibvirtVmError(f"cannot redefine domain {self.name!r}: {lv.err(exc)}") from exc
                self.rollback.add(f"restore definition of domain {self.name}", lambda: self.conn.defineXML(old_xml))
                lv.fault_point("after_define")
                if active and meta != want_meta:
                    lv.write_metadata(dom, want_meta, live_only=True)  # so the live XML names no removed seed
            if p["seed"] == "present" and active and not cdrom_live:
                self._device(dom, "attach", lv.cdrom_xml(pool.name(), seed_name))
            if p["seed"] == "absent":
                if cdrom_live:
                    self._device(dom, "detach", lv.find_cdrom(live_xml, seed_name))
                if seed_delete:
                    lv.delete_volume(pool, seed_name)
            if grow is not None:
                self._grow(dom, overlay, grow, active)
        # pending changes for the running domain
        pending: list[str] = []
        if active:
            live = lv.domain_fields(live_xml)
            pending = [
                k
                for k in (
                    "domain_type",
                    "vcpus",
                    "memory_mib",
                    "interface_type",
                    "interface_source",
                    "mac",
                    "guest_agent",
                )
                if live[k] != want[k]
            ]
        result["pending"] = pending
        result["restart_required"] = False
        if pending and state in ("running", "present"):
            if p["restart_on_change"]:
                self.act(f"restart domain {self.name} to apply {', '.join(pending)}")
                if not self.check:
                    lv.shutdown(dom, p["shutdown_timeout"], p["force"])
                    lv.start(dom)
                result["pending"] = []
            else:
                result["restart_required"] = True
        return result

    def _device(self, dom: Any, op: str, xml: str) -> None:
        try:
            if op == "attach":
                dom.attachDeviceFlags(xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)
            else:
                dom.detachDeviceFlags(xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        except libvirt.libvirtError as exc:
            raise LibvirtVmError(f"cannot {op} the seed cdrom of running domain {self.name!r}: {lv.err(exc)}") from exc

    def _grow(self, dom: Any, overlay: Any, size: int, active: bool) -> None:
        try:
            if active:
                dom.blockResize("vda", size, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
            else:
                overlay.resize(size, 0)
        except libvirt.libvirtError as exc:
            raise LibvirtVmError(
                f"cannot grow the disk of domain {self.name!r} to {size} bytes: {lv.err(exc)}"
            ) from exc

    def _warn_base(self, meta: dict[str, str]) -> None:
        p = self.p
        wanted = p["base_volume"] or (f"base-sha256-{self.checksum[:16]}" if self.checksum else None)
        if wanted and meta.get("base-volume") and wanted != meta["base-volume"]:
            self.module.warn(
                f"domain {self.name!r} was built on base volume {meta['base-volume']!r}, not {wanted!r}; its disk is "
                "kept as it is (use state=absent first to rebuild it on the new image)"
            )

    # ------------------------------------------------------------------ power

    def power(self, dom: Any, state: str, result: dict[str, Any]) -> None:
        current = lv.domain_state(dom)
        if state == "running" and current != "running":
            self.act(f"{'resume' if current == 'paused' else 'start'} domain {self.name}")
            self.diffs.append({"before": f"state: {current}\n", "after": "state: running\n"})
            if not self.check:
                if current == "paused":
                    dom.resume()
                else:
                    lv.start(dom)
            current = "running"
        elif state == "stopped" and current not in ("shutoff", "crashed"):
            self.act(f"shut down domain {self.name}")
            self.diffs.append({"before": f"state: {current}\n", "after": "state: shutoff\n"})
            if not self.check:
                how = lv.shutdown(dom, self.p["shutdown_timeout"], self.p["force"])
                if how == "forced":
                    self.module.warn(
                        f"domain {self.name!r} did not shut down within {self.p['shutdown_timeout']}s; powered off"
                    )
            current = "shutoff"
            result["pending"] = []
            result["restart_required"] = False
        if self.p["autostart"] is not None and bool(dom.autostart()) != self.p["autostart"]:
            self.act(f"set autostart {self.p['autostart']}")
            if not self.check:
                dom.setAutostart(1 if self.p["autostart"] else 0)
        result["state"] = current

    # ------------------------------------------------------------------ main

    def run(self) -> dict[str, Any]:
        self.validate()
        self.conn = lv.connect(self.p["uri"])
        state = self.p["state"]
        dom = lv.lookup_domain(self.conn, self.name)
        meta = None
        if dom is not None:
            meta = lv.read_metadata(dom)
            if meta is None:
                raise LibvirtVmError(
                    f"domain {self.name!r} on {self.conn.getURI()} was not created by "
                    f"foundation.runners.libvirt_cloudinit_vm (no metadata in namespace {lv.METADATA_NS}); "
                    "refusing to manage it"
                )
        result: dict[str, Any] = {"name": self.name, "restart_required": False, "pending": []}
        if state == "absent":
            if dom is None:
                result.update(uuid=None, state="absent", changes=[])
            else:
                result.update(self.remove(dom, meta))
        elif dom is None:
            result.update(self.create(state))
            result.setdefault("pending", [])
        else:
            result.update(self.update(dom, meta, state))
            self.power(dom, state, result)
        result["actions"] = self.actions
        result["changed"] = bool(self.actions)
        if self.module._diff and self.diffs:
            result["diff"] = self.diffs if len(self.diffs) > 1 else self.diffs[0]
        return result


def main() -> None:
    argument_spec = lv.libvirt_argument_spec()
    argument_spec.update(
        name={"type": "str", "required": True},
        state={"type": "str", "default": "present", "choices": ["present", "running", "stopped", "absent"]},
        pool={"type": "str", "default": "default"},
        base_image={"type": "str"},
        base_checksum={"type": "str"},
        base_volume={"type": "str"},
        validate_certs={"type": "bool", "default": True},
        download_timeout={"type": "int", "default": 60},
        disk_size={"type": "raw"},
        vcpus={"type": "int"},
        memory={"type": "raw"},
        bridge={"type": "str"},
        network={"type": "str"},
        mac={"type": "str"},
        domain_type={"type": "str", "choices": ["kvm", "qemu"]},
        guest_agent={"type": "bool"},
        autostart={"type": "bool"},
        seed={"type": "str", "choices": ["present", "absent"]},
        user_data={"type": "dict", "no_log": True},
        meta_data={"type": "dict"},
        network_config={"type": "dict"},
        ip_address={"type": "str"},
        gateway={"type": "str"},
        nameservers={"type": "list", "elements": "str"},
        instance_id={"type": "str"},
        shutdown_timeout={"type": "int", "default": 120},
        force={"type": "bool", "default": False},
        restart_on_change={"type": "bool", "default": False},
        keep_instance={"type": "bool", "default": True},
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[("bridge", "network"), ("network_config", "ip_address")],
    )
    if lv.LIBVIRT_IMPORT_ERROR is not None:
        module.fail_json(msg=missing_required_lib("libvirt-python"), exception=_format(lv.LIBVIRT_IMPORT_ERROR))
    if seedlib.PYCDLIB_IMPORT_ERROR is not None:
        module.fail_json(msg=missing_required_lib("pycdlib"), exception=_format(seedlib.PYCDLIB_IMPORT_ERROR))
    manager = VmManager(module)
    try:
        result = manager.run()
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
            msg=f"libvirt call failed while managing domain {manager.name!r}: {lv.err(exc)}",
            exception=traceback.format_exc(),
            name=manager.name,
            rolled_back=done,
            rollback_failed=failed,
        )
    module.exit_json(**result)


def _format(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


if __name__ == "__main__":
    main()
