# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Operating system family and version from SSM, the Azure guest agent, Azure images and EC2."""
from __future__ import annotations

import pytest

from ansible_collections.fleetpatch.ssm.plugins.plugin_utils import fleet_os
from ansible_collections.fleetpatch.ssm.plugins.plugin_utils.fleet_os import OsInfo


@pytest.mark.parametrize("platform, expected", [
    (("Linux", "Ubuntu", "24.04"), OsInfo("ubuntu", "24.04", "linux")),
    (("Linux", "Amazon Linux", "2"), OsInfo("amazon_linux", "2", "linux")),
    (("Linux", "Amazon Linux", "2023"), OsInfo("amazon_linux", "2023", "linux")),
    (("Windows", "Microsoft Windows Server 2016 Datacenter", "10.0.14393"), OsInfo("windows", "2016", "windows")),
    (("Linux", "Red Hat Enterprise Linux Server", "8.9"), OsInfo("rhel", "8.9", "linux")),
    (("Linux", "Some Distro/X", "1"), OsInfo("some_distro_x", "1", "linux")),
])
def test_ssm_platform(platform, expected):
    record = {"platform_type": platform[0], "platform_name": platform[1], "platform_version": platform[2]}
    assert fleet_os.from_ssm(record) == expected


@pytest.mark.parametrize("record, expected", [
    ({"os_name": "ubuntu", "os_version": "22.04", "os_type": "Linux"}, OsInfo("ubuntu", "22.04", "linux")),
    ({"os_name": "Windows Server 2022 Datacenter", "os_version": "10.0.20348", "os_type": "Windows"},
     OsInfo("windows", "2022", "windows")),
    # deallocated: no guest agent report, the image says it
    ({"image": {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-focal", "sku": "20_04-lts-gen2"},
      "os_type": "Linux"}, OsInfo("ubuntu", "20.04", "linux")),
    ({"image": {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server"}, "os_type": "Linux"},
     OsInfo("ubuntu", "24.04", "linux")),
    ({"image": {"publisher": "MicrosoftWindowsServer", "sku": "2022-datacenter-azure-edition"},
      "os_type": "Windows"}, OsInfo("windows", "2022", "windows")),
    ({"image": {"id": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/galleries/x/images/y"},
      "os_type": "Linux"}, OsInfo(None, None, "linux")),
])
def test_azure_guest_report_then_image(record, expected):
    assert fleet_os.from_azure(record) == expected


def test_ec2_knows_windows_and_some_linux_names_but_no_version():
    assert fleet_os.from_ec2({"platform": "windows"}) == OsInfo("windows", None, "windows")
    assert fleet_os.from_ec2({"platform_details": "Red Hat Enterprise Linux"}) == OsInfo("rhel", None, "linux")
    assert fleet_os.from_ec2({"platform_details": "Linux/UNIX"}) == OsInfo(None, None, "linux")


def test_the_first_source_naming_a_family_wins_else_the_first_naming_a_platform():
    assert fleet_os.best(OsInfo(), OsInfo(None, None, "linux"), OsInfo("ubuntu", "22.04", "linux")) == \
        OsInfo("ubuntu", "22.04", "linux")
    assert fleet_os.best(OsInfo(), OsInfo(None, None, "linux")) == OsInfo(None, None, "linux")
