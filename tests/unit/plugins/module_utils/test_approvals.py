# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Approvals of a sensitive review (module_utils/approvals.py): what is refused, what an approval lets the install
do (the InstallOverrideList per server, in AWS's documented format), the records, the proof afterwards and the
Ubuntu soak.

Reviews are built through review.py from DescribeInstancePatches rows and SSM Inventory entries as AWS returns
them, so the tests follow the data from the API to the override list.
"""
from __future__ import annotations

import datetime
import os
import re
import stat

import pytest
import yaml

from ansible_collections.fleetpatch.ssm.plugins.module_utils import approvals
from ansible_collections.fleetpatch.ssm.plugins.module_utils import review

UTC = datetime.timezone.utc
RUN = "20261127T011500Z-8b8f2d4e"
CREATED = datetime.datetime(2026, 11, 27, 1, 15, tzinfo=UTC)
NOW = datetime.datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
ACCOUNT, REGION = "123456789012", "eu-west-1"
UBUNTU_1, UBUNTU_2, AMAZON, WINDOWS = ("i-0aaaaaaaaaaaaaaa1", "i-0aaaaaaaaaaaaaaa2", "i-0bbbbbbbbbbbbbbb1",
                                       "i-0ccccccccccccccc1")

# APT titles are name.arch:version, YUM titles name.arch:epoch:version-release (user guide, InstallOverrideList).
APT_TITLE = re.compile(r"^(?P<id>[a-z0-9][a-z0-9+.-]*\.(amd64|all|arm64)):(?P<version>[^:\s]+(:[^\s]+)?)$")
YUM_TITLE = re.compile(r"^(?P<id>[A-Za-z0-9_+.-]+\.(x86_64|noarch|aarch64)):(?P<epoch>\d+):(?P<version>[^-\s]+)"
                       r"-(?P<release>[^-\s]+)$")


def row(kb_id: str, version: str, state: str = "MISSING", **members) -> dict:
    """A DescribeInstancePatches row of a Linux node (YUM versions carry their epoch already)."""
    return dict({"Title": f"{kb_id}:{version}", "KBId": kb_id, "Classification": "", "Severity": "Optional",
                 "State": state}, **members)


def server(instance_id: str, platform: tuple, rows: list, entries: list, region: str = REGION) -> dict:
    """A server of the review, built by review.py from the API's answers."""
    family_type = "Windows" if platform[0].startswith("Microsoft") else "Linux"
    node = {"InstanceId": instance_id, "ComputerName": instance_id[-4:], "PlatformType": family_type,
            "PlatformName": platform[0], "PlatformVersion": platform[1], "PingStatus": "Online"}
    family = review.os_family(node)
    state = {"PatchGroup": "prod-sensitive", "BaselineId": "pb-0123456789abcdef0", "SnapshotId": "s",
             "Operation": "Scan", "OperationEndTime": CREATED}
    built = review.server_review(node, state, rows, review.installed_packages(entries, family))
    return dict(built, account_id=ACCOUNT, region=region)


def ubuntu(instance_id: str = UBUNTU_1, openssl: str = "3.0.2-0ubuntu1.15", region: str = REGION) -> dict:
    return server(instance_id, ("Ubuntu", "22.04"), [
        row("openssl.amd64", openssl, CVEIds="CVE-2026-1111,CVE-2026-2222", Severity="Optional"),
        row("libssl3.amd64", openssl),
        row("tzdata.all", "2024a-0ubuntu0.22.04.4"),
        row("linux-image-generic.amd64", "5.15.0.143.143"),
    ], [
        {"Name": "openssl", "Version": "3.0.2-0ubuntu1.12", "Architecture": "x86_64"},
        {"Name": "libssl3", "Version": "3.0.2-0ubuntu1.12", "Architecture": "x86_64"},
        {"Name": "tzdata", "Version": "2024a-0ubuntu0.22.04.1", "Architecture": "all"},
        {"Name": "linux-image-generic", "Version": "5.15.0.140.140", "Architecture": "x86_64"},
    ], region)


def amazon_linux() -> dict:
    return server(AMAZON, ("Amazon Linux", "2023"), [
        row("openssl.x86_64", "1:3.0.8-1.amzn2023.0.14", Classification="Security", Severity="Medium"),
        row("openssl-libs.x86_64", "1:3.0.8-1.amzn2023.0.14", Classification="Security", Severity="Medium"),
        row("kernel.x86_64", "0:6.1.112-142.225.amzn2023", Classification="Security", Severity="Low"),
    ], [
        {"Name": "openssl", "Version": "3.0.8", "Release": "1.amzn2023.0.10", "Epoch": "1", "Architecture": "x86_64"},
        {"Name": "openssl-libs", "Version": "3.0.8", "Release": "1.amzn2023.0.10", "Epoch": "1",
         "Architecture": "x86_64"},
        {"Name": "kernel", "Version": "6.1.103", "Release": "133.207.amzn2023", "Architecture": "x86_64"},
    ])


def windows() -> dict:
    return server(WINDOWS, ("Microsoft Windows Server 2022 Datacenter", "10.0.20348"), [
        {"Title": "2026-11 Cumulative Update for Microsoft server operating system version 21H2 for x64-based "
                  "Systems (KB5046616)", "KBId": "KB5046616", "Classification": "SecurityUpdates",
         "Severity": "Critical", "State": "MISSING", "CVEIds": "CVE-2026-3333"},
    ], [{"HotFixId": "KB5044281"}])


def review_document(*servers) -> dict:
    return {"kind": approvals.REVIEW_KIND, "run_id": RUN, "created_at": "2026-11-27T01:15:00Z",
            "servers": list(servers or (ubuntu(), ubuntu(UBUNTU_2), amazon_linux(), windows()))}


@pytest.fixture
def index():
    return approvals.check_review(review_document())


def approval(**changes) -> dict:
    document = {
        "kind": approvals.APPROVAL_KIND, "approval_id": "CHG-4711", "review_run_id": RUN,
        "reviewer": "jane.doe@example.com", "approved_at": "2026-11-27T09:00:00Z", "reason": "Monthly patching",
        "expires_at": "2026-12-04T09:00:00Z",
        "packages": [{"package": "openssl.amd64", "version": "3.0.2-0ubuntu1.15"},
                     {"package": "libssl3.amd64", "version": "3.0.2-0ubuntu1.15", "servers": [UBUNTU_1, UBUNTU_2]}],
    }
    document.update(changes)
    return {key: value for key, value in document.items() if value is not None}


def refused(document, index, now=NOW) -> str:
    with pytest.raises(approvals.ApprovalRefused) as raised:
        approvals.check_approval(document, index, now)
    return str(raised.value)


# ---------------------------------------------------------------------------------------------- the review data

def test_review_entries_carry_installed_and_candidate_versions_in_one_form():
    ubuntu_entries = {entry["package"]: entry for entry in ubuntu()["missing"]}
    assert ubuntu_entries["openssl.amd64"]["installed_version"] == "3.0.2-0ubuntu1.12"  # amd64 rows, x86_64 inventory
    assert ubuntu_entries["openssl.amd64"]["candidate_version"] == "3.0.2-0ubuntu1.15"
    assert ubuntu_entries["openssl.amd64"]["cve_ids"] == ["CVE-2026-1111", "CVE-2026-2222"]
    assert ubuntu_entries["openssl.amd64"]["same_version_as"] == ["libssl3.amd64"]
    assert ubuntu_entries["tzdata.all"]["installed_version"] == "2024a-0ubuntu0.22.04.1"
    amazon_entries = {entry["package"]: entry for entry in amazon_linux()["missing"]}
    assert amazon_entries["openssl.x86_64"]["installed_version"] == "1:3.0.8-1.amzn2023.0.10"  # rpm Epoch kept
    assert amazon_entries["kernel.x86_64"]["installed_version"] == "0:6.1.103-133.207.amzn2023"  # no epoch: 0
    (kb,) = windows()["missing"]
    assert (kb["package"], kb["installed_version"], kb["candidate_version"]) == ("KB5046616", None, "KB5046616")


def test_the_review_names_what_a_kernel_meta_package_brings_new():
    entries = {entry["package"]: entry for entry in ubuntu()["missing"]}
    assert entries["linux-image-generic.amd64"]["new_packages"] == [
        "linux-image-5.15.0-143-generic.amd64", "linux-modules-5.15.0-143-generic.amd64",
        "linux-modules-extra-5.15.0-143-generic.amd64"]
    assert entries["openssl.amd64"]["new_packages"] == [] and entries["tzdata.all"]["new_packages"] == []
    hwe = review.new_packages(row("linux-generic-hwe-22.04.amd64", "6.5.0.35.35~22.04.1"), "UBUNTU")
    assert "linux-image-6.5.0-35-generic.amd64" in hwe and "linux-headers-6.5.0-35-generic.amd64" in hwe
    assert review.new_packages(row("linux-firmware.all", "20220329.git681281e4-0ubuntu3.30"), "UBUNTU") == []
    assert review.new_packages(row("kernel.x86_64", "0:6.1.112-142.225.amzn2023"), "AMAZON_LINUX_2023") == []


def test_reboot_expected_is_a_stated_heuristic():
    entries = {entry["package"]: entry for entry in ubuntu()["missing"] + amazon_linux()["missing"]}
    assert entries["linux-image-generic.amd64"]["reboot_expected"] is True
    assert entries["kernel.x86_64"]["reboot_expected"] is True
    assert entries["openssl.amd64"]["reboot_expected"] is False
    assert all("heuristic" in entry["reboot_reason"] for entry in entries.values())
    assert windows()["missing"][0]["reboot_expected"] is True  # an OS cumulative update
    dotnet = {"Title": "2026-11 Cumulative Update for .NET Framework 4.8 (KB5046999)", "KBId": "KB5046999"}
    assert review.reboot_expectation(dotnet, review.WINDOWS)[0] is None  # AWS says nothing: unknown


# ---------------------------------------------------------------------------------------------- checking

def test_a_valid_approval_resolves_to_exact_packages_per_server(index):
    resolved = approvals.check_approval(approval(), index, NOW)

    assert sorted(resolved) == [UBUNTU_1, UBUNTU_2]
    assert [(item.package, item.version, item.title) for item in resolved[UBUNTU_1]] == [
        ("libssl3.amd64", "3.0.2-0ubuntu1.15", "libssl3.amd64:3.0.2-0ubuntu1.15"),
        ("openssl.amd64", "3.0.2-0ubuntu1.15", "openssl.amd64:3.0.2-0ubuntu1.15")]


def test_an_approval_of_an_unknown_run_is_refused(index):
    message = refused(approval(review_run_id="20261120T011500Z-deadbeef"), index)
    assert "20261120T011500Z-deadbeef" in message and "unknown run" in message


def test_a_package_that_was_not_in_the_review_is_refused(index):
    message = refused(approval(packages=[{"package": "nginx.amd64", "version": "1.18.0-6ubuntu14.5"}]), index)
    assert "nginx.amd64 is not in review" in message


def test_a_version_the_review_does_not_offer_is_refused(index):
    message = refused(approval(packages=[{"package": "openssl.amd64", "version": "3.0.2-0ubuntu1.16"}]), index)
    assert "version 3.0.2-0ubuntu1.16 is not in review" in message and "offers 3.0.2-0ubuntu1.15" in message
    message = refused(approval(packages=[{"package": "openssl.amd64", "version": "3.0.2-0ubuntu1.16",
                                          "servers": [UBUNTU_1]}]), index)
    assert f"not what the review offers {UBUNTU_1} (3.0.2-0ubuntu1.15)" in message


def test_unknown_servers_and_servers_not_offered_the_package_are_refused(index):
    message = refused(approval(packages=[{"package": "openssl.amd64", "version": "3.0.2-0ubuntu1.15",
                                          "servers": ["i-0999999999999999f", AMAZON]}]), index)
    assert "i-0999999999999999f is not a server of review" in message
    assert f"offers openssl.amd64 to no such server as {AMAZON}" in message


KERNEL_META = {"package": "linux-image-generic.amd64", "version": "5.15.0.143.143", "servers": [UBUNTU_1]}


def test_a_kernel_meta_package_is_refused_unless_its_new_packages_are_named(index):
    message = refused(approval(packages=[KERNEL_META]), index)
    assert (f"new_packages: linux-image-generic.amd64 brings the new package {IMAGE}.amd64 to {UBUNTU_1} (review "
            f"{RUN}); name it in new_packages, or leave linux-image-generic.amd64 out") in message
    named = approval(packages=[KERNEL_META], new_packages=[
        {"package": f"linux-{kind}-5.15.0-143-generic.amd64"} for kind in ("image", "modules", "modules-extra")])
    resolved = approvals.check_approval(named, index, NOW)[UBUNTU_1]
    assert [(item.package, item.new) for item in resolved] == [
        ("linux-image-generic.amd64", False), (f"{IMAGE}.amd64", True),
        ("linux-modules-5.15.0-143-generic.amd64", True), ("linux-modules-extra-5.15.0-143-generic.amd64", True)]


def test_a_new_package_no_approved_package_brings_is_refused(index):
    message = refused(approval(new_packages=[{"package": f"{IMAGE}.amd64"}]), index)
    assert f"new_packages[0]: {IMAGE}.amd64 is not a new package that the approved packages bring" in message


def test_an_expired_approval_is_refused(index):
    message = refused(approval(), index, now=datetime.datetime(2026, 12, 5, tzinfo=UTC))
    assert "expired at 2026-12-04T09:00:00Z" in message


@pytest.mark.parametrize("field", ["reviewer", "reason", "approval_id", "approved_at", "expires_at"])
def test_an_approval_without_who_why_or_when_is_refused(index, field):
    assert f"{field}: missing" in refused(approval(**{field: None}), index)
    if field in ("reviewer", "reason"):
        assert f"{field}: missing" in refused(approval(**{field: "  "}), index)


@pytest.mark.parametrize("changes, problem", [
    ({"approved_at": "2026-11-27T10:00:00Z"}, "is in the future"),
    ({"approved_at": "2026-11-26T23:00:00Z"}, "is before the review was written"),
    ({"expires_at": "2026-11-27T08:00:00Z"}, "is not after approved_at"),
    ({"approved_at": "2026-11-27 09:00:00"}, "is not an ISO 8601 date-time with a time zone"),
    ({"approval_id": "CHG 4711/a"}, "approval_id: 'CHG 4711/a' is not valid"),
    ({"packages": []}, "packages: missing or empty"),
    ({"packages": [{"package": "openssl.amd64"}]}, "packages[0]: allowed: a mapping with package and version"),
    ({"packages": [{"package": "openssl.amd64", "version": "3.0.2-0ubuntu1.15"},
                   {"package": "openssl.amd64", "version": "3.0.2-0ubuntu1.15", "servers": [UBUNTU_2]}]},
     f"openssl.amd64 is approved twice for {UBUNTU_2}"),
])
def test_inconsistent_approvals_are_refused(index, changes, problem):
    assert problem in refused(approval(**changes), index)


def test_every_problem_is_named_at_once(index):
    with pytest.raises(approvals.ApprovalRefused) as raised:
        approvals.check_approval(approval(reviewer=None, reason=None, review_run_id="other"), index, NOW)
    assert len(raised.value.problems) == 3


@pytest.mark.parametrize("document", [{"run_id": RUN}, dict(review_document(), run_id="../../etc"), []])
def test_a_file_that_is_not_a_review_is_refused(document):
    # The run ID names the approval's record directory: nothing but the role's run IDs is accepted.
    with pytest.raises(approvals.ApprovalRefused, match="is not a review"):
        approvals.check_review(document)


# ---------------------------------------------------------------------------------------------- generating

def test_generate_approves_all_of_a_server_at_the_reviews_versions(index):
    document = approvals.generate_approval(index, approval_id="CHG-1", reviewer="jane", reason="r", now=NOW,
                                           valid_days=7, servers=[AMAZON])

    assert document["review_run_id"] == RUN and document["expires_at"] == "2026-12-04T09:30:00Z"
    assert [(entry["package"], entry["version"], entry["servers"]) for entry in document["packages"]] == [
        ("kernel.x86_64", "0:6.1.112-142.225.amzn2023", [AMAZON]),
        ("openssl-libs.x86_64", "1:3.0.8-1.amzn2023.0.14", [AMAZON]),
        ("openssl.x86_64", "1:3.0.8-1.amzn2023.0.14", [AMAZON])]
    assert approvals.check_approval(document, index, NOW)  # what it writes, it accepts


def test_generate_approves_a_package_everywhere_it_is_offered(index):
    document = approvals.generate_approval(index, approval_id="CHG-2", reviewer="jane", reason="r", now=NOW,
                                           valid_days=1, packages=["openssl*"], ticket="CHG-2")

    assert {(entry["package"], tuple(entry["servers"])) for entry in document["packages"]} == {
        ("openssl.amd64", (UBUNTU_1, UBUNTU_2)), ("openssl.x86_64", (AMAZON,)), ("openssl-libs.x86_64", (AMAZON,))}
    assert document["ticket"] == "CHG-2"


def test_generate_names_the_new_packages_and_the_install_list_leaves_them_out(index):
    document = approvals.generate_approval(index, approval_id="CHG-3", reviewer="jane", reason="r", now=NOW,
                                           valid_days=1, servers=[UBUNTU_1], packages=["linux-image-generic*"])
    assert document["new_packages"] == [
        {"package": f"linux-{kind}-5.15.0-143-generic.amd64", "servers": [UBUNTU_1]}
        for kind in ("image", "modules", "modules-extra")]
    resolved = approvals.check_approval(document, index, NOW)
    (batch,) = approvals.install_batches(index, resolved, "CHG-3")
    assert "linux-image-generic.amd64:5.15.0.143.143" in batch["content"] and IMAGE not in batch["content"]
    report = approvals.report_entries(document, resolved, index)
    assert {"package": f"{IMAGE}.amd64", "instance_ids": [UBUNTU_1], "approved_by": "jane",
            "approved_at": document["approved_at"], "ticket": "r"} in report  # any version: the meta's decides


def test_generate_refuses_names_that_match_nothing(index):
    with pytest.raises(approvals.ApprovalRefused, match="'nginx' matches nothing"):
        approvals.generate_approval(index, approval_id="CHG-3", reviewer="jane", reason="r", now=NOW, valid_days=1,
                                    packages=["nginx"])
    with pytest.raises(approvals.NothingToApprove):
        approvals.generate_approval(index, approval_id="CHG-3", reviewer="jane", reason="r", now=NOW, valid_days=1,
                                    accept=lambda server, entry: False)


# ---------------------------------------------------------------------------------------------- install lists

def parsed(content: str) -> list:
    return [(patch["id"], patch["title"]) for patch in yaml.safe_load(content)["patches"]]


def test_ubuntu_override_list_is_apt_titles_and_pins_the_rest(index):
    resolved = approvals.check_approval(approval(packages=[
        {"package": "openssl.amd64", "version": "3.0.2-0ubuntu1.15", "servers": [UBUNTU_1]},
        {"package": "libssl3.amd64", "version": "3.0.2-0ubuntu1.15", "servers": [UBUNTU_1]}]), index, NOW)
    content = approvals.override_document(approvals.override_entries(index.servers[UBUNTU_1], resolved[UBUNTU_1]),
                                          "test")

    entries = parsed(content)
    assert entries == [
        ("libssl3.amd64", "libssl3.amd64:3.0.2-0ubuntu1.15"),
        ("linux-image-generic.amd64", "linux-image-generic.amd64:5.15.0.140.140"),  # pinned at the installed one
        ("openssl.amd64", "openssl.amd64:3.0.2-0ubuntu1.15"),
        ("tzdata.all", "tzdata.all:2024a-0ubuntu0.22.04.1")]
    for patch_id, title in entries:
        match = APT_TITLE.match(title)
        assert match and match["id"] == patch_id


def test_amazon_linux_override_list_is_yum_titles_with_epoch(index):
    resolved = approvals.check_approval(approval(packages=[
        {"package": "openssl.x86_64", "version": "1:3.0.8-1.amzn2023.0.14"},
        {"package": "openssl-libs.x86_64", "version": "1:3.0.8-1.amzn2023.0.14"}]), index, NOW)
    entries = parsed(approvals.override_document(
        approvals.override_entries(index.servers[AMAZON], resolved[AMAZON]), "test"))

    assert entries == [("kernel.x86_64", "kernel.x86_64:0:6.1.103-133.207.amzn2023"),
                       ("openssl-libs.x86_64", "openssl-libs.x86_64:1:3.0.8-1.amzn2023.0.14"),
                       ("openssl.x86_64", "openssl.x86_64:1:3.0.8-1.amzn2023.0.14")]
    assert all(YUM_TITLE.match(title)["id"] == patch_id for patch_id, title in entries)


def test_windows_override_list_is_kb_ids_without_pins(index):
    resolved = approvals.check_approval(approval(packages=[{"package": "KB5046616", "version": "KB5046616"}]),
                                        index, NOW)
    entries = parsed(approvals.override_document(
        approvals.override_entries(index.servers[WINDOWS], resolved[WINDOWS]), "test"))

    assert [entry[0] for entry in entries] == ["KB5046616"]
    assert re.fullmatch(r"KB\d+", entries[0][0])


def test_pinning_can_be_turned_off(index):
    resolved = approvals.check_approval(approval(), index, NOW)
    entries = approvals.override_entries(index.servers[UBUNTU_1], resolved[UBUNTU_1], pin=False)
    assert [entry[0] for entry in entries] == ["libssl3.amd64", "openssl.amd64"]


def test_quotes_in_titles_stay_valid_yaml():
    content = approvals.override_document([("pkg.amd64", "pkg.amd64:1.0-it's")], "a 'comment'")
    assert parsed(content) == [("pkg.amd64", "pkg.amd64:1.0-it's")]


def test_servers_with_the_same_list_share_one_batch_per_account_and_region():
    servers = [ubuntu(UBUNTU_1), ubuntu(UBUNTU_2), ubuntu("i-0aaaaaaaaaaaaaaa3", region="us-east-1")]
    index = approvals.check_review(review_document(*servers))
    resolved = approvals.check_approval(approval(packages=[
        {"package": "openssl.amd64", "version": "3.0.2-0ubuntu1.15"},
        {"package": "libssl3.amd64", "version": "3.0.2-0ubuntu1.15"}]), index, NOW)

    batches = approvals.install_batches(index, resolved, "CHG-4711")
    assert [(batch["region"], batch["instance_ids"]) for batch in batches] == [
        ("eu-west-1", [UBUNTU_1, UBUNTU_2]), ("us-east-1", ["i-0aaaaaaaaaaaaaaa3"])]
    assert batches[0]["content"] == batches[1]["content"]
    assert batches[0]["key"] == f"{RUN}/CHG-4711/{batches[0]['sha256'][:16]}.yaml"
    assert batches[0]["sha256"] == approvals.digest(batches[0]["content"].encode())


def test_a_package_approved_without_its_same_version_siblings_is_warned_about(index):
    resolved = approvals.check_approval(approval(packages=[
        {"package": "openssl.amd64", "version": "3.0.2-0ubuntu1.15", "servers": [UBUNTU_1]}]), index, NOW)
    (warning,) = approvals.split_source_warnings(resolved, index)
    assert "openssl.amd64 is approved without libssl3.amd64" in warning and UBUNTU_1 in warning


def test_the_report_gets_the_approval_in_its_own_terms(index):
    document = approval(ticket="CHG-4711", packages=[
        {"package": "openssl.amd64", "version": "3.0.2-0ubuntu1.15", "servers": [UBUNTU_1, UBUNTU_2]},
        {"package": "kernel.x86_64", "version": "0:6.1.112-142.225.amzn2023"},
        {"package": "KB5046616", "version": "KB5046616"}])
    entries = approvals.report_entries(document, approvals.check_approval(document, index, NOW), index)

    assert entries == [
        {"package": "KB5046616", "instance_ids": [WINDOWS], "approved_by": "jane.doe@example.com",
         "approved_at": "2026-11-27T09:00:00Z", "ticket": "CHG-4711"},  # the report's KBs carry no version
        {"package": "kernel.x86_64", "version": "6.1.112-142.225.amzn2023", "instance_ids": [AMAZON],
         "approved_by": "jane.doe@example.com", "approved_at": "2026-11-27T09:00:00Z", "ticket": "CHG-4711"},
        {"package": "openssl.amd64", "version": "3.0.2-0ubuntu1.15", "instance_ids": [UBUNTU_1, UBUNTU_2],
         "approved_by": "jane.doe@example.com", "approved_at": "2026-11-27T09:00:00Z", "ticket": "CHG-4711"}]


# ---------------------------------------------------------------------------------------------- records

def test_an_approval_is_recorded_once_read_only_with_its_digest(tmp_path):
    data = b"approval_id: CHG-4711\n"
    first = approvals.record_approval(str(tmp_path), RUN, "CHG-4711", data)

    path = tmp_path / "approvals" / RUN / "CHG-4711.yml"
    assert first == {"path": str(path), "sha256": approvals.digest(data), "written": True}
    assert path.read_bytes() == data and stat.S_IMODE(os.stat(path).st_mode) == 0o444
    assert approvals.recorded_digest(str(tmp_path), RUN, "CHG-4711") == approvals.digest(data)
    assert approvals.record_approval(str(tmp_path), RUN, "CHG-4711", data)["written"] is False
    with pytest.raises(approvals.ApprovalRefused, match="never replaced"):
        approvals.record_approval(str(tmp_path), RUN, "CHG-4711", b"approval_id: CHG-4711\nedited: true\n")
    assert approvals.recorded_digest(str(tmp_path), RUN, "CHG-9") is None


def test_approval_tags_obey_awss_tag_characters():
    tags = approvals.approval_tags(approval(reviewer="Jane Doe <jane@example.com>"), "ab" * 32)
    assert tags == {
        "fleetpatch:last-approval": "CHG-4711", "fleetpatch:last-approval-by": "Jane Doe _jane@example.com_",
        "fleetpatch:last-approval-at": "2026-11-27T09:00:00Z", "fleetpatch:last-approval-run": RUN,
        "fleetpatch:last-approval-sha256": "ab" * 32}
    allowed = re.compile(r"^[\w\s.:/=+\-@]*$")
    assert all(allowed.match(value) and len(value) <= 256 for value in tags.values())
    assert len(approvals.tag_value("x" * 300)) == 256


# ---------------------------------------------------------------------------------------------- verification

BEFORE = {"openssl.x86_64": "3.0.2-0ubuntu1.12", "libssl3.x86_64": "3.0.2-0ubuntu1.12", "tzdata.all": "2024a-1"}
APPROVED = [{"package": "openssl.amd64", "version": "3.0.2-0ubuntu1.15"},
            {"package": "libssl3.amd64", "version": "3.0.2-0ubuntu1.15"}]


def test_exactly_the_approved_versions_changed_is_verified():
    after = dict(BEFORE, **{"openssl.x86_64": "3.0.2-0ubuntu1.15", "libssl3.x86_64": "3.0.2-0ubuntu1.15"})
    result = approvals.verify_server(UBUNTU_1, "UBUNTU", APPROVED, BEFORE, after)
    assert result["status"] == "verified" and all(item["ok"] for item in result["approved"])


def test_a_package_not_at_its_approved_version_is_a_mismatch():
    after = dict(BEFORE, **{"openssl.x86_64": "3.0.2-0ubuntu1.16", "libssl3.x86_64": "3.0.2-0ubuntu1.15"})
    result = approvals.verify_server(UBUNTU_1, "UBUNTU", APPROVED, BEFORE, after)
    assert result["status"] == "mismatch" and result["not_at_approved_version"] == ["openssl.amd64"]


def test_any_other_change_is_a_mismatch():
    after = {"openssl.x86_64": "3.0.2-0ubuntu1.15", "libssl3.x86_64": "3.0.2-0ubuntu1.15", "tzdata.all": "2024a-2"}
    result = approvals.verify_server(UBUNTU_1, "UBUNTU", APPROVED, BEFORE, after)
    assert result["status"] == "mismatch"
    assert result["unapproved_changes"] == [{"package": "tzdata.all", "before": "2024a-1", "after": "2024a-2"}]
    without_tzdata = {key: value for key, value in after.items() if key != "tzdata.all"}
    removed = approvals.verify_server(UBUNTU_1, "UBUNTU", APPROVED, BEFORE, without_tzdata)
    assert removed["unapproved_changes"] == [{"package": "tzdata.all", "before": "2024a-1", "after": None}]


IMAGE = "linux-image-5.15.0-143-generic"


def test_a_new_package_fails_the_verification_unless_the_approval_names_it():
    after = dict(BEFORE, **{"openssl.x86_64": "3.0.2-0ubuntu1.15", "libssl3.x86_64": "3.0.2-0ubuntu1.15",
                            f"{IMAGE}.x86_64": "5.15.0-143.153"})
    unnamed = approvals.verify_server(UBUNTU_1, "UBUNTU", APPROVED, BEFORE, after)
    named = approvals.verify_server(UBUNTU_1, "UBUNTU", APPROVED + [{"package": f"{IMAGE}.amd64", "new": True}],
                                    BEFORE, after)
    relaxed = approvals.verify_server(UBUNTU_1, "UBUNTU", APPROVED, BEFORE, after, allow_new_packages=True)

    assert (unnamed["status"], unnamed["unapproved_new_packages"]) == ("mismatch", [f"{IMAGE}.x86_64"])
    assert (named["status"], named["unapproved_new_packages"]) == ("verified", [])
    assert named["new_packages"] == [{"package": f"{IMAGE}.x86_64", "before": None, "after": "5.15.0-143.153",
                                      "approved": True}]
    assert relaxed["status"] == "verified" and relaxed["unapproved_new_packages"] == [f"{IMAGE}.x86_64"]


def test_an_approved_new_package_that_did_not_appear_is_no_mismatch():
    after = dict(BEFORE, **{"openssl.x86_64": "3.0.2-0ubuntu1.15", "libssl3.x86_64": "3.0.2-0ubuntu1.15"})
    result = approvals.verify_server(UBUNTU_1, "UBUNTU", APPROVED + [{"package": f"{IMAGE}.amd64", "new": True}],
                                     BEFORE, after)
    assert result["status"] == "verified" and result["new_packages"] == []


def test_windows_kbs_are_verified_by_presence():
    before = {"KB5044281": "KB5044281"}
    result = approvals.verify_server(WINDOWS, "WINDOWS", [{"package": "KB5046616", "version": "KB5046616"}], before,
                                     dict(before, KB5046616="KB5046616"))
    assert result["status"] == "verified"
    missing = approvals.verify_server(WINDOWS, "WINDOWS", [{"package": "KB5046616", "version": "KB5046616"}],
                                      before, before)
    assert missing["not_at_approved_version"] == ["KB5046616"]


# ---------------------------------------------------------------------------------------------- Ubuntu soak

def at(server_doc: dict, moment: datetime.datetime) -> dict:
    return dict(server_doc, operation_end_time=moment.isoformat())


def test_the_soak_approves_candidates_first_seen_n_days_before_the_scan():
    first = approvals.check_review(review_document(at(ubuntu(), CREATED), at(amazon_linux(), CREATED)))
    seen = approvals.record_first_seen({}, first)
    later = CREATED + datetime.timedelta(days=7)
    # A week later openssl has a newer candidate; libssl3 and the others did not change.
    second = approvals.check_review(review_document(at(ubuntu(openssl="3.0.2-0ubuntu1.16"), later),
                                                    at(amazon_linux(), later)))
    seen = approvals.record_first_seen(seen, second)

    accept = approvals.soaked(seen, second, days=7)
    document = approvals.generate_approval(second, approval_id="soak-1", reviewer="fleetpatch-soak", reason="soak",
                                           now=later, valid_days=1, accept=accept)
    approved = {entry["package"] for entry in document["packages"]}
    assert approved == {"tzdata.all", "linux-image-generic.amd64"}  # the 1.16 upload starts its own soak
    assert seen["versions"]["Ubuntu 22.04"]["openssl.amd64"] == {"3.0.2-0ubuntu1.15": "2026-11-27T01:15:00Z",
                                                                 "3.0.2-0ubuntu1.16": "2026-12-04T01:15:00Z"}
    assert not any(accept(second.servers[AMAZON], entry) for entry in second.servers[AMAZON]["missing"])  # Ubuntu only
    with pytest.raises(approvals.NothingToApprove):
        approvals.generate_approval(second, approval_id="soak-2", reviewer="s", reason="s", now=later, valid_days=1,
                                    accept=approvals.soaked(seen, second, days=8))


def test_first_seen_keeps_the_earliest_sighting():
    later = approvals.check_review(review_document(at(ubuntu(), CREATED + datetime.timedelta(days=3))))
    earlier = approvals.check_review(review_document(at(ubuntu(), CREATED)))
    seen = approvals.record_first_seen(approvals.record_first_seen({}, later), earlier)
    assert seen["versions"]["Ubuntu 22.04"]["tzdata.all"] == {"2024a-0ubuntu0.22.04.4": "2026-11-27T01:15:00Z"}
