# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""A machine's operating system as (family, version, platform), from the source that knows it best.

Order: SSM (what the agent reports: the OS Patch Manager patches by), then the Azure guest agent's instance view
(osName/osVersion), then the Azure image reference, then EC2 (PlatformDetails; often only Windows vs Linux/UNIX).
Families: ubuntu, debian, amazon_linux, rhel, centos, oracle_linux, rocky, almalinux, suse, windows, macos; any
other name is kept, lower-cased, with runs of other characters as "_". Windows versions are the Server release year
("2022"), which is what SSM's PlatformName and Azure's image SKUs carry; the build number stays in the source facts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

# (substring of the lower-cased OS name, family); first match wins. SSM PlatformName examples: "Ubuntu", "Amazon
# Linux", "Microsoft Windows Server 2022 Datacenter", "Red Hat Enterprise Linux Server", "SLES", "macOS".
_FAMILIES = (
    ("windows", "windows"), ("ubuntu", "ubuntu"), ("debian", "debian"), ("amazon linux", "amazon_linux"),
    ("amzn", "amazon_linux"), ("red hat", "rhel"), ("rhel", "rhel"), ("centos", "centos"),
    ("oracle", "oracle_linux"), ("rocky", "rocky"), ("alma", "almalinux"), ("suse", "suse"), ("sles", "suse"),
    ("macos", "macos"),
)
# Azure Marketplace publishers of the images whose SKU carries the version.
_PUBLISHERS = {"canonical": "ubuntu", "microsoftwindowsserver": "windows", "redhat": "rhel", "debian": "debian",
               "suse": "suse", "almalinux": "almalinux", "resf": "rocky", "oracle": "oracle_linux"}
_YEAR = re.compile(r"\b(20\d\d)\b")
_UBUNTU_SKU = re.compile(r"(\d\d)[._](\d\d)")
_LEADING_NUMBER = re.compile(r"(\d+(?:[._]\d+)?)")


@dataclass(frozen=True)
class OsInfo:
    family: Optional[str] = None
    version: Optional[str] = None
    platform: Optional[str] = None  # linux | windows | macos

    def known(self) -> bool:
        return self.family is not None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def family_of(name: Optional[str]) -> Optional[str]:
    if not name:
        return None
    lowered = name.lower()
    for needle, family in _FAMILIES:
        if needle in lowered:
            return family
    return _slug(name) or None


def _platform_of(family: Optional[str], platform_type: Optional[str] = None) -> Optional[str]:
    if platform_type:
        return platform_type.lower()
    if family is None:
        return None
    return family if family in ("windows", "macos") else "linux"


def _version(family: Optional[str], name: str, version: Optional[str]) -> Optional[str]:
    if family == "windows":
        year = _YEAR.search(name or "")
        return year.group(1) if year else version
    return version or None


def from_ssm(record: Optional[dict]) -> OsInfo:
    """PlatformName / PlatformVersion / PlatformType of DescribeInstanceInformation."""
    if not record or not record.get("platform_name"):
        return OsInfo()
    family = family_of(record["platform_name"])
    return OsInfo(family, _version(family, record["platform_name"], record.get("platform_version")),
                  _platform_of(family, record.get("platform_type")))


def _from_image(image: dict) -> OsInfo:
    family = _PUBLISHERS.get((image.get("publisher") or "").lower())
    sku = image.get("sku") or ""
    if family == "ubuntu":
        match = _UBUNTU_SKU.search(sku) or _UBUNTU_SKU.search(image.get("offer") or "")
        return OsInfo(family, f"{match.group(1)}.{match.group(2)}" if match else None, "linux")
    if family == "windows":
        year = _YEAR.search(sku)
        return OsInfo(family, year.group(1) if year else None, "windows")
    if family:
        number = _LEADING_NUMBER.search(sku)
        return OsInfo(family, number.group(1).replace("_", ".") if number else None, "linux")
    return OsInfo()


def from_azure(record: Optional[dict]) -> OsInfo:
    """The guest agent's osName/osVersion when the VM runs, else the image reference, else the OS disk type."""
    if not record:
        return OsInfo()
    if record.get("os_name"):
        family = family_of(record["os_name"])
        return OsInfo(family, _version(family, record["os_name"], record.get("os_version")),
                      _platform_of(family, record.get("os_type")))
    image = _from_image(record.get("image") or {})
    if image.known():
        return image
    return OsInfo(platform=_platform_of(None, record.get("os_type")))


def from_ec2(record: Optional[dict]) -> OsInfo:
    """EC2 names the OS only loosely: Platform is "windows" or absent; PlatformDetails says "Linux/UNIX",
    "Red Hat Enterprise Linux", "Ubuntu Pro", "Windows", ... (no version)."""
    if not record:
        return OsInfo()
    if record.get("platform") == "windows":
        return OsInfo("windows", None, "windows")
    details = record.get("platform_details") or ""
    family = family_of(details) if details and details != "Linux/UNIX" else None
    return OsInfo(family, None, "linux")


def best(*candidates: OsInfo) -> OsInfo:
    """The first candidate that names a family; else the first that names at least the platform."""
    for candidate in candidates:
        if candidate.known():
            return candidate
    for candidate in candidates:
        if candidate.platform:
            return candidate
    return OsInfo()
