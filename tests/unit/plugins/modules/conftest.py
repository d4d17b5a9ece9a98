"""The lab fixture of the libvirt_cloudinit_vm unit tests: libvirt's test:///default driver."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field

import libvirt
import pytest

from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_api as libvirt_api
from ansible_collections.foundation.runners.plugins.module_utils import _libvirt_volumes as libvirt_volumes

URI = "test:///default"
POOL = "default-pool"


@dataclass
class Lab:
    conn: libvirt.virConnect
    image: str
    store: dict[str, bytes] = field(default_factory=dict)
    uploads: list[str] = field(default_factory=list)

    def domains(self) -> set[str]:
        return {d.name() for d in self.conn.listAllDomains(0)} - {"test"}

    def volumes(self) -> set[str]:
        pool = self.conn.storagePoolLookupByName(POOL)
        pool.refresh(0)
        return set(pool.listVolumes())

    def xml(self, name: str, flags: int = libvirt.VIR_DOMAIN_XML_INACTIVE) -> str:
        return self.conn.lookupByName(name).XMLDesc(flags)

    def state(self, name: str) -> int:
        return self.conn.lookupByName(name).state()[0]


@pytest.fixture
def lab(monkeypatch, tmp_path):
    """The real libvirt test driver; only the volume streams it lacks (upload, download) are faked."""
    conn = libvirt.open(URI)
    image = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "64M"], check=True)
    state = Lab(conn, str(image))

    def fake_upload(_conn, vol, source, length):
        state.store[vol.key()] = source.read(length)
        state.uploads.append(vol.name())

    def fake_download(_conn, vol, length):
        return state.store.get(vol.key(), b"\0" * length)[:length]

    monkeypatch.setattr(libvirt_volumes, "upload_volume", fake_upload)
    monkeypatch.setattr(libvirt_volumes, "download_volume", fake_download)
    monkeypatch.delenv(libvirt_api.FAULT_ENV, raising=False)
    yield state
    for dom in conn.listAllDomains(0):
        if dom.name() != "test":
            if dom.isActive():
                dom.destroy()
            dom.undefine()
    pool = conn.storagePoolLookupByName(POOL)
    for vol in pool.listAllVolumes(0):
        vol.delete(0)
    conn.close()
