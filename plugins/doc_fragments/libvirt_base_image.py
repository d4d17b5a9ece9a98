# Copyright: foundation.runners contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
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
  ca_path:
    description:
      - PEM file with the CA certificates that verify the TLS certificate of an https O(base_image),
        used instead of the system's CA store.
      - Only used when O(validate_certs=true).
    type: path
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
"""
