#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: patch_approval
short_description: Check, record and apply an approval of a sensitive-server patch review
version_added: 0.1.0
description:
  - Checks an approvals file against the review it approves (a review file written by the
    C(fleetpatch.ssm.sensitive_patching) role) and refuses, naming every problem - an approval of another (unknown)
    run, a package or version the review does not offer, a server the review does not know, an expired approval,
    one without reviewer or reason.
  - Records a valid approval once - a read-only (0444) copy of the file and its SHA-256 under
    O(history_dir)C(/approvals/<run id>/<approval id>.yml); an approval ID is never recorded with other content.
  - Returns, per account, region and set of servers, the exact C(InstallOverrideList) of the approval
    (RV(batches)) - the approved packages at their approved versions and, on Linux, every other package the
    review offers the server pinned at its installed version, so that nothing else is upgraded (see the notes).
  - With O(generate), first writes the approvals file from the review - every candidate, or those of some servers
    and/or packages, or (O(generate.soak_days)) those first seen at least N days ago (the Ubuntu soak).
  - With O(tag_patch_group), tags the patch baselines registered for that patch group in the task's account and
    region with the last approval (C(fleetpatch:last-approval), C(-by), C(-at), C(-run), C(-sha256)).
author:
  - fleetpatch.ssm maintainers (@fleetpatch)
options:
  review:
    description: Path of the review file (YAML) the approval is checked against.
    type: path
    required: true
  approval:
    description:
      - Path of the approvals file (YAML). Format - see the role's README or C(docs/sensitive-workflow.md).
      - With O(generate), the file is written there unless it exists (then it is used as it is, with a warning).
    type: path
    required: true
  history_dir:
    description: Where approvals are recorded (C(approvals/<run id>/<approval id>.yml)) and the soak state kept.
    type: path
    required: true
  generate:
    description: Write the approvals file from the review before checking it.
    type: dict
    suboptions:
      approval_id:
        description: The approval's ID (1 to 64 letters, digits, V(.), V(_), V(-)), e.g. the change ticket.
        type: str
        required: true
      reviewer:
        description: Who approves (recorded in the file and in the baseline tags).
        type: str
        required: true
      reason:
        description: Why (recorded in the file).
        type: str
        required: true
      ticket:
        description: A change ticket reference.
        type: str
      valid_days:
        description: The approval expires this many days after it is written.
        type: int
        default: 7
      servers:
        description: Instance IDs (or glob patterns) of the review to approve on; default every server.
        type: list
        elements: str
      packages:
        description: Packages (the review's names, or glob patterns such as V(openssl*)) to approve; default all.
        type: list
        elements: str
      soak_days:
        description:
          - Approve only candidates first seen by a review at least this many days before this review's scan of the
            server, on servers of O(generate.soak_os_families) (the collection's "approve after N days" for Ubuntu,
            which AWS does not support there). Days are counted on AWS's clock (the scans' end times).
          - The first-seen dates are kept in O(history_dir)C(/soak/first-seen.yml); every call with
            O(generate.soak_days) adds the review's candidates to it.
        type: int
      soak_os_families:
        description: Operating systems the soak applies to.
        type: list
        elements: str
        default: [UBUNTU]
      allow_empty:
        description:
          - When the selection approves nothing, end without an approval (RV(approval) V(null)) instead of failing
            (the soak's normal case when nothing has soaked long enough).
        type: bool
        default: false
  record:
    description: Record the approval (the read-only copy and its SHA-256). V(false) only checks it.
    type: bool
    default: true
  require_recorded:
    description:
      - Refuse an approval that was not recorded, or whose file changed since it was recorded (the install's
        guard).
    type: bool
    default: false
  pin_unapproved:
    description:
      - On Linux, list in each server's InstallOverrideList every package the review offers it but that is not
        approved, at its installed version, so that an approved package needing an unapproved upgrade fails
        instead of upgrading it.
    type: bool
    default: true
  tag_patch_group:
    description: Tag the baselines registered for this patch group (in the task's account and region).
    type: str
notes:
  - Times are the controller's clock (UTC). C(approved_at) may be at most 5 minutes ahead of it and not before the
    review was written; C(expires_at) must be later than both C(approved_at) and now.
  - The InstallOverrideList format is AWS's (AWS-RunPatchBaseline, C(InstallOverrideList)) - C(patches) with
    C(id) (Linux V(name.arch), Windows the KB) and C(title); on Linux the title is the package's exact version
    (APT V(name.arch:version), YUM V(name.arch:epoch:version-release)), so a version published after the review is
    not installed. The guide's apt / apt-utils example shows a listed package whose dependency is listed at another
    version being blocked and reported failed; pinning relies on that.
  - Check mode writes nothing (no approvals file, no record, no tag) and reports what would change.
seealso:
  - module: fleetpatch.ssm.patch_review_info
  - module: fleetpatch.ssm.run_patch_baseline
  - name: AWS-RunPatchBaseline InstallOverrideList (AWS Systems Manager User Guide)
    description: The override list format per operating system.
    link: https://docs.aws.amazon.com/systems-manager/latest/userguide/patch-manager-aws-runpatchbaseline.html
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Approve everything the review offers to one database server
  fleetpatch.ssm.patch_approval:
    review: /var/lib/fleetpatch/reviews/20261127T011500Z-8b8f2d4e/review.yml
    approval: /var/lib/fleetpatch/approvals-inbox/CHG-4711.yml
    history_dir: /var/lib/fleetpatch
    generate:
      approval_id: CHG-4711
      reviewer: "{{ awx_user_email }}"
      reason: Monthly database patching
      servers: [i-0123456789abcdef0]
  register: approval

- name: The install's guard - the approval must be valid and recorded unchanged
  fleetpatch.ssm.patch_approval:
    review: /var/lib/fleetpatch/reviews/20261127T011500Z-8b8f2d4e/review.yml
    approval: /var/lib/fleetpatch/approvals-inbox/CHG-4711.yml
    history_dir: /var/lib/fleetpatch
    record: false
    require_recorded: true
  register: approved
"""

RETURN = r"""
approval:
  description: The approval as read (after generation); V(null) when O(generate.allow_empty) found nothing to approve.
  returned: always
  type: dict
approval_id:
  description: The approval's ID.
  returned: always
  type: str
review_run_id:
  description: The run of the review it approves.
  returned: always
  type: str
sha256:
  description: SHA-256 of the approvals file.
  returned: always
  type: str
record:
  description: C(path) of the recorded copy, its C(sha256), and C(written) (whether this call wrote it).
  returned: always
  type: dict
servers:
  description:
    - Instance ID -> the approved packages (C(package), C(version), C(title)), then the new packages the approval
      names (C(package), C(new=true); no version or title - whatever the approved version needs), the form
      O(fleetpatch.ssm.patch_review_info#module:expected) takes.
  returned: always
  type: dict
batches:
  description:
    - One per account, region and InstallOverrideList - C(account_id), C(region), C(instance_ids), C(content) (the
      YAML), C(sha256), C(key) (a suggested S3 key, V(<run id>/<approval id>/<sha256 prefix>.yaml)).
  returned: always
  type: list
  elements: dict
warnings_found:
  description: Approved packages whose same-version siblings are not approved (their install would fail).
  returned: always
  type: list
  elements: str
tags:
  description: The tags naming this approval.
  returned: always
  type: dict
report_approvals:
  description:
    - The approval as the O(fleetpatch.ssm.patch_history_info#module:approvals) entries of the report (role
      C(fleetpatch.ssm.patch_report), variable C(patch_report_approvals)), so that the report checks every change
      on the approved servers against it.
  returned: always
  type: list
  elements: dict
tagged_baselines:
  description: IDs of the baselines tagged (or that would be, in check mode).
  returned: with O(tag_patch_group)
  type: list
  elements: str
"""

import datetime
import os

try:
    import yaml
except ImportError:
    yaml = None

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.fleetpatch.ssm.plugins.module_utils import approvals
from ansible_collections.fleetpatch.ssm.plugins.module_utils import baseline
from ansible_collections.fleetpatch.ssm.plugins.module_utils import tags
from ansible_collections.fleetpatch.ssm.plugins.module_utils.ssm import ssm_client
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import ParameterError

FIRST_SEEN_FILE = os.path.join("soak", "first-seen.yml")


def approved_view(item) -> dict:
    """An approved package as the result lists it (see RETURN servers)."""
    if item.new:
        return {"package": item.package, "new": True}
    return {"package": item.package, "version": item.version, "title": item.title}


def read_yaml(path: str, what: str):
    try:
        with open(path, "rb") as source:
            data = source.read()
    except OSError as error:
        raise approvals.ApprovalRefused([f"{what} {path} cannot be read: {error.strerror}"]) from None
    try:
        return data, yaml.safe_load(data)
    except yaml.YAMLError as error:
        raise approvals.ApprovalRefused([f"{what} {path} is not valid YAML: {error}"]) from None


def write_replacing(path: str, text: str) -> None:
    """Write `path` whole (a temporary file renamed over it): a reader never sees half a file."""
    os.makedirs(os.path.dirname(path), mode=0o750, exist_ok=True)
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as target:
        target.write(text)
    os.replace(partial, path)


def dump(document: dict, comment: str) -> str:
    return f"# {comment}\n" + yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=120)


def soak_filter(module, index, spec: dict):
    """accept() of the soak, after adding the review's candidates to the first-seen state."""
    path = os.path.join(module.params["history_dir"], FIRST_SEEN_FILE)
    first_seen = read_yaml(path, "the soak state")[1] if os.path.exists(path) else {}
    updated = approvals.record_first_seen(first_seen, index)
    if updated != first_seen and not module.check_mode:
        write_replacing(path, dump(updated, "fleetpatch.ssm: when each candidate version was first seen by a review "
                                            "(Ubuntu soak; the collection's, not AWS's)"))
    return approvals.soaked(updated, index, spec["soak_days"], tuple(spec["soak_os_families"]))


def generate(module, index, now: datetime.datetime):
    """The approvals file's text generated from the review, written unless the file exists (None then)."""
    spec, path = module.params["generate"], module.params["approval"]
    accept = soak_filter(module, index, spec) if spec["soak_days"] is not None else None
    if os.path.exists(path):
        module.warn(f"{path} exists: it is checked as it is, not generated again")
        return None
    document = approvals.generate_approval(
        index, approval_id=spec["approval_id"], reviewer=spec["reviewer"], reason=spec["reason"], now=now,
        valid_days=spec["valid_days"], ticket=spec["ticket"], servers=spec["servers"], packages=spec["packages"],
        accept=accept)
    text = dump(document, f"fleetpatch.ssm approval of review {index.run_id}: once recorded, never edit it")
    if not module.check_mode:
        write_replacing(path, text)
    return text


def guard_recorded(params: dict, approval: dict, sha256: str) -> None:
    recorded = approvals.recorded_digest(params["history_dir"], approval["review_run_id"], approval["approval_id"])
    if recorded is None:
        raise approvals.ApprovalRefused([f"approval {approval['approval_id']} was never recorded: run the approve "
                                         "step (playbooks/sensitive_approve.yml) first"])
    if recorded != sha256:
        raise approvals.ApprovalRefused([f"{params['approval']} changed since approval {approval['approval_id']} "
                                         f"was recorded (sha256 {recorded}, now {sha256}): a recorded approval is "
                                         "never edited; write a new one with another approval_id"])


def record(module, approval: dict, data: bytes, sha256: str) -> dict:
    """The recorded copy: written now (params record, not check mode), or where it is / would be."""
    params = module.params
    run_id, approval_id = approval["review_run_id"], approval["approval_id"]
    if params["record"] and not module.check_mode:
        return approvals.record_approval(params["history_dir"], run_id, approval_id, data)
    path = approvals.record_paths(params["history_dir"], run_id, approval_id)[0]
    return {"path": path, "sha256": sha256, "written": params["record"] and not os.path.exists(path)}


def tag_baselines(module, patch_group: str, wanted: dict) -> tuple:
    """(changed, baseline ids): the group's registered baselines carry `wanted` (other tags are kept)."""
    client = ssm_client(module)
    registered = sorted({group["baseline_id"] for group in baseline.list_patch_groups(client, name_prefix=patch_group)
                         if group["patch_group"] == patch_group})
    if not registered:
        module.warn(f"No baseline is registered for patch group {patch_group}: no baseline was tagged")
    changed = False
    for baseline_id in registered:
        current = tags.resource_tags(client, "PatchBaseline", baseline_id)
        desired = dict(current, **wanted)
        if desired != current:
            changed = True
            if not module.check_mode:
                tags.apply_tags(client, "PatchBaseline", baseline_id, current, desired)
    return changed, registered


def run(module) -> dict:
    params = module.params
    now = datetime.datetime.now(datetime.timezone.utc)
    index = approvals.check_review(read_yaml(params["review"], "the review")[1])
    generated = generate(module, index, now) if params["generate"] else None
    if generated is not None:
        data, approval = generated.encode(), yaml.safe_load(generated)
    else:
        data, approval = read_yaml(params["approval"], "the approvals file")
    resolved = approvals.check_approval(approval, index, now)
    sha256 = approvals.digest(data)
    if params["require_recorded"]:
        guard_recorded(params, approval, sha256)
    recorded = record(module, approval, data, sha256)
    approval_tags = approvals.approval_tags(approval, sha256)
    result = {
        "changed": generated is not None or recorded["written"],
        "approval": approval,
        "approval_id": approval["approval_id"],
        "review_run_id": approval["review_run_id"],
        "sha256": sha256,
        "record": recorded,
        "servers": {server: [approved_view(item) for item in items] for server, items in resolved.items()},
        "batches": approvals.install_batches(index, resolved, approval["approval_id"], params["pin_unapproved"]),
        "warnings_found": approvals.split_source_warnings(resolved, index) if params["pin_unapproved"] else [],
        "tags": approval_tags,
        "report_approvals": approvals.report_entries(approval, resolved, index),
    }
    if params["tag_patch_group"]:
        tagged, result["tagged_baselines"] = tag_baselines(module, params["tag_patch_group"], approval_tags)
        result["changed"] = result["changed"] or tagged
    for warning in result["warnings_found"]:
        module.warn(warning)
    return result


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            review=dict(type="path", required=True),
            approval=dict(type="path", required=True),
            history_dir=dict(type="path", required=True),
            generate=dict(type="dict", options=dict(
                approval_id=dict(type="str", required=True),
                reviewer=dict(type="str", required=True),
                reason=dict(type="str", required=True),
                ticket=dict(type="str"),
                valid_days=dict(type="int", default=7),
                servers=dict(type="list", elements="str"),
                packages=dict(type="list", elements="str"),
                soak_days=dict(type="int"),
                soak_os_families=dict(type="list", elements="str", default=["UBUNTU"]),
                allow_empty=dict(type="bool", default=False),
            )),
            record=dict(type="bool", default=True),
            require_recorded=dict(type="bool", default=False),
            pin_unapproved=dict(type="bool", default=True),
            tag_patch_group=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    if yaml is None:
        module.fail_json(msg=missing_required_lib("PyYAML"))
    try:
        module.exit_json(**run(module))
    except approvals.NothingToApprove as nothing:
        if not (module.params["generate"] or {}).get("allow_empty"):
            module.fail_json(msg="Approval refused: " + "; ".join(nothing.problems), problems=nothing.problems)
        module.exit_json(changed=False, approval=None, approval_id=None, review_run_id=None, sha256=None, record=None,
                         servers={}, batches=[], warnings_found=[], tags={}, report_approvals=[], msg=str(nothing))
    except approvals.ApprovalRefused as refused:
        module.fail_json(msg="Approval refused: " + "; ".join(refused.problems), problems=refused.problems)
    except ParameterError as error:
        module.fail_json(msg=str(error))
    except AnsibleAWSError as error:
        module.fail_json_aws_error(error)


if __name__ == "__main__":
    main()
