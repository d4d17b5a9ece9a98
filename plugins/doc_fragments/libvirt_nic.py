# Copyright: foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
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
  nwfilter:
    description:
      - A libvirt network filter on the NIC (its C(<filterref>)), which the host applies to every frame the guest
        sends or receives, whatever the guest does as root.
      - V(clean-traffic), one of libvirt's stock filters, drops frames whose source MAC, IP or ARP data are not the
        guest's own, and every non-IP, non-ARP frame. Nothing else about the guest's networking changes.
      - When not given, an existing domain keeps the filter it has. An empty O(nwfilter.name) removes it.
      - A running domain gets a changed filter at once (libvirt updates the NIC live); should libvirt refuse, the
        module warns and the change waits for the next boot (RV(restart_required)).
      - The filter must be defined on the host (C(virsh nwfilter-list)); the stock ones come with the package
        C(libvirt-daemon-config-nwfilter).
    type: dict
    suboptions:
      name:
        description: Name of the filter, for example V(clean-traffic).
        type: str
        required: true
      parameters:
        description:
          - "The filter's variables, name to a value or a list of values, for example C({IP: 198.51.100.21})."
          - C(IP) defaults to the address of O(ip_address), so the filter does not have to learn it from the
            guest's first packets.
        type: dict
        default: {}
"""
