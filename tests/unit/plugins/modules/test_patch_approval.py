# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetpatch.ssm.patch_approval: the approve step (generate, check, record, tag) and the install's guard, on real
files in a temporary history directory and a stubbed SSM client for the baseline tags."""
from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.fleetpatch.ssm.plugins.module_utils import approvals
from ansible_collections.fleetpatch.ssm.plugins.modules import patch_approval
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import run_module
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import stubbed
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_approvals import AMAZON
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_approvals import RUN
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_approvals import UBUNTU_1
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.test_approvals import review_document

GENERATE = {"approval_id": "CHG-4711", "reviewer": "jane.doe@example.com", "reason": "Monthly patching",
            "servers": [AMAZON]}


@pytest.fixture
def files(tmp_path):
    """The review (written now, so that an approval generated now is after it) and where things go."""
    document = dict(review_document(), created_at="2020-01-01T00:00:00Z")
    review_file = tmp_path / "review.yml"
    review_file.write_text(yaml.safe_dump(document))
    return {"review": str(review_file), "approval": str(tmp_path / "inbox" / "CHG-4711.yml"),
            "history_dir": str(tmp_path / "history")}


def run(args: dict, *queues, check_mode: bool = False) -> dict:
    with stubbed() as (client, stubber):
        for queue in queues:
            queue(stubber)
        return run_module(patch_approval.main, args, client, check_mode=check_mode)


def test_generate_checks_records_and_returns_the_install_lists(files):
    result = run(dict(files, generate=GENERATE))

    assert result["changed"] is True and result["approval_id"] == "CHG-4711" and result["review_run_id"] == RUN
    written = open(files["approval"], "rb").read()
    assert result["sha256"] == approvals.digest(written)
    record = result["record"]
    assert record["written"] and record["path"] == os.path.join(files["history_dir"], "approvals", RUN, "CHG-4711.yml")
    assert open(record["path"], "rb").read() == written  # the recorded copy is the file, byte for byte
    assert sorted(result["servers"]) == [AMAZON]
    (batch,) = result["batches"]
    assert batch["instance_ids"] == [AMAZON] and batch["key"].startswith(f"{RUN}/CHG-4711/")
    assert {patch["id"] for patch in yaml.safe_load(batch["content"])["patches"]} == {
        "openssl.x86_64", "openssl-libs.x86_64", "kernel.x86_64"}
    assert result["tags"]["fleetpatch:last-approval-sha256"] == result["sha256"]

    again = run(dict(files, generate=GENERATE))  # idempotent: the file exists and is recorded
    assert again["changed"] is False and again["sha256"] == result["sha256"]
    assert any("exists" in warning for warning in again["warnings"])


def test_check_mode_writes_nothing(files):
    result = run(dict(files, generate=GENERATE), check_mode=True)

    assert result["changed"] is True and result["record"]["written"] is True
    assert not os.path.exists(files["approval"]) and not os.path.exists(files["history_dir"])


def test_the_install_guard_refuses_an_approval_never_recorded_or_edited_since(files):
    os.makedirs(os.path.dirname(files["approval"]))
    run(dict(files, generate=GENERATE, record=False))
    unrecorded = run(dict(files, record=False, require_recorded=True))
    assert unrecorded["failed"] and "approval CHG-4711 was never recorded" in unrecorded["msg"]

    run(files)  # the approve step records it
    assert run(dict(files, record=False, require_recorded=True))["batches"]
    with open(files["approval"], "a", encoding="utf-8") as edited:
        edited.write("# edited after the approval\n")
    changed = run(dict(files, record=False, require_recorded=True))
    assert changed["failed"] and "changed since approval CHG-4711 was recorded" in changed["msg"]


def test_a_refused_approval_names_every_problem(files):
    os.makedirs(os.path.dirname(files["approval"]))
    with open(files["approval"], "w", encoding="utf-8") as handle:
        yaml.safe_dump({"approval_id": "CHG-1", "review_run_id": "20200101T000000Z-00000000",
                        "approved_at": "2026-01-01T00:00:00Z", "expires_at": "2099-01-01T00:00:00Z",
                        "packages": [{"package": "nginx.amd64", "version": "1.0"}]}, handle)

    result = run(files)

    assert result["failed"] and result["msg"].startswith("Approval refused: ")
    assert len(result["problems"]) == 4  # unknown run, no reviewer, no reason, package not in the review
    assert not os.path.exists(files["history_dir"])  # nothing recorded


def test_generating_nothing_is_an_error_unless_allowed(files):
    nothing = dict(GENERATE, servers=None, packages=["openssl*"], soak_days=30)
    refused = run(dict(files, generate=nothing))
    assert refused["failed"] and "nothing to approve" in refused["msg"]

    allowed = run(dict(files, generate=dict(nothing, allow_empty=True)))
    assert not allowed.get("failed") and allowed["approval"] is None and allowed["batches"] == []
    assert os.path.exists(os.path.join(files["history_dir"], "soak", "first-seen.yml"))  # the sightings are kept


def test_tags_name_the_last_approval_on_the_groups_baselines(files):
    baseline = "pb-0123456789abcdef0"

    def calls(stubber):
        stubber.add_response("describe_patch_groups", {"Mappings": [
            {"PatchGroup": "prod-sensitive", "BaselineIdentity": {"BaselineId": baseline, "BaselineName": "sensitive-ubuntu",
                                                                  "OperatingSystem": "UBUNTU"}},
            {"PatchGroup": "prod-sensitive-2", "BaselineIdentity": {"BaselineId": "pb-0fedcba9876543210",
                                                                    "BaselineName": "other-ubuntu", "OperatingSystem": "UBUNTU"}},
        ]}, {"Filters": [{"Key": "NAME_PREFIX", "Values": ["prod-sensitive"]}], "MaxResults": 50})
        stubber.add_response("list_tags_for_resource", {"TagList": [{"Key": "fleetpatch:policy", "Value": "p"}]},
                             {"ResourceType": "PatchBaseline", "ResourceId": baseline})
        stubber.add_response("add_tags_to_resource", {}, {"ResourceType": "PatchBaseline", "ResourceId": baseline,
                                                          "Tags": sorted(({"Key": key, "Value": value} for key, value
                                                                          in tags.items()), key=lambda t: t["Key"])})

    recorded = run(dict(files, generate=GENERATE))
    tags = recorded["tags"]
    result = run(dict(files, tag_patch_group="prod-sensitive"), calls)

    assert result["changed"] is True and result["tagged_baselines"] == [baseline]  # not the other group's
    assert tags["fleetpatch:last-approval"] == "CHG-4711"
    assert tags["fleetpatch:last-approval-by"] == "jane.doe@example.com"


def test_an_approved_package_without_its_sibling_is_warned_about(files):
    result = run(dict(files, generate=dict(GENERATE, servers=[UBUNTU_1], packages=["openssl.amd64"])))
    assert result["warnings_found"] and "approved without libssl3.amd64" in result["warnings_found"][0]
