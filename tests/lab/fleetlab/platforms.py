"""The operating systems the lab simulates, with the names SSM uses for them.

`family` is the baseline OperatingSystem value (botocore enum), `product` the PRODUCT filter value Patch Manager
reports for the release (DescribePatchProperties), `platform_name`/`platform_version` what
DescribeInstanceInformation shows for a node.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Platform:
    key: str
    family: str
    version: str
    platform_type: str
    platform_name: str
    product: str
    codename: str = ""

    @property
    def is_windows(self) -> bool:
        return self.platform_type == "Windows"


PLATFORMS: dict[str, Platform] = {
    p.key: p
    for p in (
        Platform("ubuntu-20.04", "UBUNTU", "20.04", "Linux", "Ubuntu", "Ubuntu20.04", "focal"),
        Platform("ubuntu-22.04", "UBUNTU", "22.04", "Linux", "Ubuntu", "Ubuntu22.04", "jammy"),
        Platform("ubuntu-24.04", "UBUNTU", "24.04", "Linux", "Ubuntu", "Ubuntu24.04", "noble"),
        Platform("amzn-2", "AMAZON_LINUX_2", "2", "Linux", "Amazon Linux", "AmazonLinux2"),
        Platform("amzn-2023", "AMAZON_LINUX_2023", "2023", "Linux", "Amazon Linux", "AmazonLinux2023"),
        Platform(
            "windows-2016", "WINDOWS", "10.0.14393", "Windows",
            "Microsoft Windows Server 2016 Datacenter", "WindowsServer2016",
        ),
        Platform(
            "windows-2022", "WINDOWS", "10.0.20348", "Windows",
            "Microsoft Windows Server 2022 Datacenter", "WindowsServer2022",
        ),
    )
}


def platform(key: str) -> Platform:
    try:
        return PLATFORMS[key]
    except KeyError:
        raise ValueError(f"unknown platform {key!r}; known: {', '.join(sorted(PLATFORMS))}") from None
