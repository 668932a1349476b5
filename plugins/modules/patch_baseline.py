#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: patch_baseline
short_description: Manage AWS Systems Manager Patch Manager patch baselines
version_added: 0.1.0
description:
  - Creates, updates and deletes a custom patch baseline of AWS Systems Manager Patch Manager, identified by its
    O(name) in the account and region.
  - The task declares the whole baseline. Options left unset mean "not set" (AWS's default), and an update sends
    the complete desired baseline (C(UpdatePatchBaseline) with C(Replace=true)), so changes made in the console
    are detected and undone.
  - Order and case that AWS ignores are not changes; rules, filters, filter values, patch lists and sources
    compare as sets, documented filter values match in any case and are sent in AWS's spelling.
  - Every value is checked against what the baseline's operating system accepts before anything is written;
    a bad value fails naming the field, the value and what is allowed.
  - Can register the baseline as the default baseline of its operating system, and restores the AWS-owned default
    when it stops being the default.
author:
  - fleetpatch.ssm maintainers (@fleetpatch)
options:
  name:
    description:
      - Name of the patch baseline; identifies it in the account and region.
      - 3 to 128 letters, digits, V(_), V(-) or V(.).
      - AWS does not require names to be unique; the module fails when several baselines have this name.
    type: str
    required: true
  operating_system:
    description:
      - Operating system the baseline applies to. Required with O(state=present).
      - Always sent (AWS would otherwise assume V(WINDOWS)).
      - AWS cannot change the operating system of a baseline. A different value fails unless
        O(replace_on_os_change=true).
    type: str
    choices:
      - ALMA_LINUX
      - AMAZON_LINUX
      - AMAZON_LINUX_2
      - AMAZON_LINUX_2022
      - AMAZON_LINUX_2023
      - CENTOS
      - DEBIAN
      - MACOS
      - ORACLE_LINUX
      - RASPBIAN
      - REDHAT_ENTERPRISE_LINUX
      - ROCKY_LINUX
      - SUSE
      - UBUNTU
      - WINDOWS
  description:
    description:
      - Description of the baseline, 1 to 1024 characters.
    type: str
  global_filters:
    description:
      - Filters every patch must pass, whatever rule approves it. At most 4.
      - Valid keys depend on O(operating_system). V(AMAZON_LINUX_2), V(AMAZON_LINUX_2023) and the other RPM-based
        systems take V(PRODUCT), V(CLASSIFICATION), V(SEVERITY); V(UBUNTU) takes V(PRODUCT), V(PRIORITY),
        V(SECTION), and so do V(DEBIAN) and V(RASPBIAN); V(WINDOWS) takes V(PATCH_SET),
        V(PRODUCT), V(PRODUCT_FAMILY), V(CLASSIFICATION), V(MSRC_SEVERITY); V(MACOS) takes V(PRODUCT),
        V(CLASSIFICATION).
    type: list
    elements: dict
    suboptions:
      key:
        description:
          - The patch property to filter on, see O(global_filters).
        type: str
        required: true
      values:
        description:
          - 1 to 20 values; a patch matches when its property has any of them. V(*) matches every value (the
            console's C(All) is not an API value).
          - 'Documented values: Amazon Linux C(CLASSIFICATION) V(Security), V(Bugfix), V(Enhancement),
            V(Recommended), V(Newpackage); C(SEVERITY) V(Critical), V(Important), V(Medium), V(Low) (and V(None) on
            Amazon Linux 2023); Ubuntu/Debian C(PRIORITY) V(Required), V(Important), V(Standard), V(Optional),
            V(Extra); C(SECTION) the Debian archive sections (V(Admin), V(Libs), V(Kernel)...); Windows
            C(CLASSIFICATION) V(CriticalUpdates), V(DefinitionUpdates), V(Drivers), V(FeaturePacks),
            V(SecurityUpdates), V(ServicePacks), V(Tools), V(UpdateRollups), V(Updates), V(Upgrades);
            C(MSRC_SEVERITY) V(Critical), V(Important), V(Moderate), V(Low), V(Unspecified);
            C(PATCH_SET) V(OS), V(APPLICATION).'
          - Documented values are matched in any case. Other values (C(PRODUCT), other distributions' keys) are
            passed as given.
        type: list
        elements: str
        required: true
  approval_rules:
    description:
      - Rules that approve patches automatically. At most 10; their order does not matter.
    type: list
    elements: dict
    suboptions:
      filters:
        description:
          - Up to 4 filters a patch must all match, with the keys of O(global_filters).
        type: list
        elements: dict
        required: true
        suboptions:
          key:
            description:
              - The patch property to filter on.
            type: str
            required: true
          values:
            description:
              - 1 to 20 values, see O(global_filters[].values).
            type: list
            elements: str
            required: true
      compliance_level:
        description:
          - Compliance severity reported for missing patches this rule approves.
        type: str
        choices: [CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL, UNSPECIFIED]
        default: UNSPECIFIED
      approve_after_days:
        description:
          - Days after release a matching patch is approved, 0 to 360.
          - Every operating system except V(UBUNTU), V(DEBIAN) and V(RASPBIAN) needs exactly one of
            O(approval_rules[].approve_after_days) and O(approval_rules[].approve_until_date); those three support
            neither (approval is immediate).
        type: int
      approve_until_date:
        description:
          - Approve matching patches released on or before this date, V(YYYY-MM-DD).
        type: str
      enable_non_security:
        description:
          - Also approve non-security updates from the repositories. Linux only.
        type: bool
        default: false
  approved_patches:
    description:
      - Patches approved whatever the rules say. At most 50; order and duplicates do not matter.
      - 'Formats: Windows KB IDs (V(KB2032276)) or MSRC bulletins (V(MS10-012)); Ubuntu and Debian package
        names only, without version, architecture or wildcard (pin exact versions with an InstallOverrideList);
        Amazon Linux and other RPM systems package names in their documented forms, CVE, advisory or Bugzilla
        IDs, with at most one V(*).'
    type: list
    elements: str
  approved_patches_compliance_level:
    description:
      - Compliance severity reported for missing approved patches.
    type: str
    choices: [CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL, UNSPECIFIED]
    default: UNSPECIFIED
  approved_patches_enable_non_security:
    description:
      - Approved patches include non-security updates. Linux only.
    type: bool
    default: false
  rejected_patches:
    description:
      - Patches never approved, in the formats of O(approved_patches). At most 50.
    type: list
    elements: str
  rejected_patches_action:
    description:
      - V(ALLOW_AS_DEPENDENCY) installs a rejected package when another package needs it (and reports it as
        C(InstalledRejected)); V(BLOCK) never installs it.
    type: str
    choices: [ALLOW_AS_DEPENDENCY, BLOCK]
    default: ALLOW_AS_DEPENDENCY
  sources:
    description:
      - Alternative package repositories for the baseline's products. Linux only; at most 20, one per name.
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - Name of the source, 3 to 50 letters, digits, V(_), V(-) or V(.).
        type: str
        required: true
      products:
        description:
          - 1 to 20 products the source applies to, for example V(AmazonLinux2023), V(Ubuntu22.04).
        type: list
        elements: str
        required: true
      configuration:
        description:
          - The repository configuration (yum repo or apt sources.list format), 1 to 1024 characters.
          - AWS treats it as sensitive; it is hidden in the module's output.
        type: str
        required: true
  available_security_updates_compliance_status:
    description:
      - Compliance status of nodes that miss security updates the baseline does not approve. Windows Server only.
    type: str
    choices: [COMPLIANT, NON_COMPLIANT]
  default:
    description:
      - V(true) registers the baseline as the default baseline of its operating system in the account and region
        (nodes in no patch group use it).
      - V(false) makes sure it is not; if it is the default, the AWS-owned default baseline of the operating
        system is registered again (by its full ARN). A default that is another baseline is left alone.
      - Deleting the default baseline restores the AWS-owned default first.
    type: bool
    default: false
  replace_on_os_change:
    description:
      - When the existing baseline has another O(operating_system), delete it and create a new one (with a new ID)
        instead of failing.
    type: bool
    default: false
  deregister_patch_groups:
    description:
      - AWS refuses to delete a baseline that patch groups use. With V(false) the module fails naming the groups;
        with V(true) it deregisters them first (their nodes then use the default baseline of their OS).
      - Also applies when O(replace_on_os_change) replaces the baseline.
    type: bool
    default: false
  state:
    description:
      - V(present) creates or updates the baseline, V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
notes:
  - Tags are read only when O(tags) is set, so a run without O(tags) costs one C(DescribePatchBaselines) and one
    C(GetPatchBaseline) call.
  - Quotas are AWS's, per account and region, 50 custom baselines and 25 patch groups per baseline.
seealso:
  - module: fleetpatch.ssm.patch_baseline_info
  - module: fleetpatch.ssm.patch_group
  - name: Patch baselines (AWS Systems Manager User Guide)
    description: Predefined and custom patch baselines, rules per operating system.
    link: https://docs.aws.amazon.com/systems-manager/latest/userguide/patch-manager-patch-baselines.html
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.tags.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Ubuntu servers - security updates from the -security pocket, approved immediately
  fleetpatch.ssm.patch_baseline:
    name: ubuntu-prod-auto
    operating_system: UBUNTU
    description: Security updates for auto-patched Ubuntu servers
    approval_rules:
      - filters:
          - key: PRODUCT
            values: ["Ubuntu20.04", "Ubuntu22.04", "Ubuntu24.04"]
          - key: PRIORITY
            values: [Required, Important]
        compliance_level: HIGH
    tags:
      Owner: platform

- name: Amazon Linux 2023 - security (critical/important) after 7 days, bugfixes after 14; no kernel updates
  fleetpatch.ssm.patch_baseline:
    name: al2023-prod-auto
    operating_system: AMAZON_LINUX_2023
    approval_rules:
      - filters:
          - key: CLASSIFICATION
            values: [Security]
          - key: SEVERITY
            values: [Critical, Important]
        approve_after_days: 7
        compliance_level: CRITICAL
      - filters:
          - key: CLASSIFICATION
            values: [Bugfix]
        approve_after_days: 14
    rejected_patches: ["kernel*"]
    rejected_patches_action: BLOCK
    default: true

- name: Sensitive Windows servers - nothing auto-approved, only the reviewed KBs
  fleetpatch.ssm.patch_baseline:
    name: windows-prod-sensitive
    operating_system: WINDOWS
    approved_patches: [KB5034439, KB5034127]
    approved_patches_compliance_level: CRITICAL
    available_security_updates_compliance_status: NON_COMPLIANT

- name: Remove a baseline and the patch groups that still use it
  fleetpatch.ssm.patch_baseline:
    name: legacy-baseline
    state: absent
    deregister_patch_groups: true
"""

RETURN = r"""
patch_baseline:
  description:
    - The baseline after the task, in the module's option names; V(null) after O(state=absent).
    - In check mode, the baseline the task would produce (RV(patch_baseline.baseline_id) is V(null) for a baseline
      that would be created).
  returned: always
  type: dict
  contains:
    baseline_id:
      description: ID of the baseline.
      type: str
      sample: pb-0123456789abcdef0
    name:
      description: Name of the baseline.
      type: str
    operating_system:
      description: Operating system of the baseline.
      type: str
      sample: UBUNTU
    description:
      description: Description, V(null) when unset.
      type: str
    global_filters:
      description: Global filters, sorted by key, values sorted.
      type: list
      elements: dict
      sample: [{"key": "PRODUCT", "values": ["*"]}]
    approval_rules:
      description:
        - Approval rules, in a stable order, with O(approval_rules[].compliance_level),
          O(approval_rules[].approve_after_days), O(approval_rules[].approve_until_date),
          O(approval_rules[].enable_non_security) and O(approval_rules[].filters).
      type: list
      elements: dict
    approved_patches:
      description: Approved patches, sorted.
      type: list
      elements: str
    approved_patches_compliance_level:
      description: Compliance level of approved patches.
      type: str
    approved_patches_enable_non_security:
      description: Whether approved patches include non-security updates.
      type: bool
    rejected_patches:
      description: Rejected patches, sorted.
      type: list
      elements: str
    rejected_patches_action:
      description: What happens to rejected patches.
      type: str
    sources:
      description: Alternative sources, sorted by name.
      type: list
      elements: dict
    available_security_updates_compliance_status:
      description: Compliance status for unapproved security updates (Windows), V(null) when unset.
      type: str
    default:
      description: Whether the baseline is the default baseline of its operating system.
      type: bool
    patch_groups:
      description: Patch groups registered with the baseline.
      type: list
      elements: str
    tags:
      description: Tags of the baseline. Returned when O(tags) is set.
      type: dict
      returned: when O(tags) is set
    created_date:
      description: When the baseline was created (ISO 8601).
      type: str
    modified_date:
      description: When the baseline was last modified (ISO 8601).
      type: str
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.fleetpatch.ssm.plugins.module_utils import baseline as api
from ansible_collections.fleetpatch.ssm.plugins.module_utils.patch_rules import BASELINE_NAME
from ansible_collections.fleetpatch.ssm.plugins.module_utils.patch_rules import OPERATING_SYSTEMS
from ansible_collections.fleetpatch.ssm.plugins.module_utils.ssm import ManagedResource
from ansible_collections.fleetpatch.ssm.plugins.module_utils.ssm import ensure
from ansible_collections.fleetpatch.ssm.plugins.module_utils.tags import apply_tags
from ansible_collections.fleetpatch.ssm.plugins.module_utils.tags import check_tags
from ansible_collections.fleetpatch.ssm.plugins.module_utils.tags import desired_tags
from ansible_collections.fleetpatch.ssm.plugins.module_utils.tags import resource_tags
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import ParameterError
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import check_pattern

COMPLIANCE_LEVELS = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNSPECIFIED"]
FILTER_OPTIONS = dict(
    key=dict(type="str", required=True, no_log=False),
    values=dict(type="list", elements="str", required=True),
)


class PatchBaseline(ManagedResource):
    result_key = "patch_baseline"

    def validate(self):
        check_pattern("name", self.params["name"], *BASELINE_NAME)
        if self.params["state"] == "present":
            self._desired = api.desired_baseline(self.params)
            check_tags(self.params["tags"])

    def read(self):
        identity = api.find_baseline(self.client, self.params["name"], owner=api.OWNER_SELF)
        if identity is None:
            return None
        response = api.get_baseline(self.client, identity["baseline_id"])
        if response is None:  # deleted between the two calls
            return None
        state = api.baseline_state(response, identity)
        if self.params["tags"] is not None:  # tags cost a call: read them only when the task manages them
            state["tags"] = resource_tags(self.client, api.RESOURCE_TYPE, state["baseline_id"])
        return state

    def desired(self, current):
        desired = dict(self._desired, default=self.params["default"])
        if self.params["tags"] is not None:
            desired["tags"] = desired_tags(current and current["tags"], self.params["tags"], self.params["purge_tags"])
        if current and current["operating_system"] != desired["operating_system"]:
            self._check_replacement(current, desired)
        return desired

    def _check_replacement(self, current, desired):
        """AWS cannot change a baseline's OS (UpdatePatchBaseline has no OperatingSystem): replace or refuse."""
        if not self.params["replace_on_os_change"]:
            raise ParameterError(
                f"operating_system: {desired['operating_system']!r} differs from {current['operating_system']!r}, "
                f"the operating system of the existing baseline {current['name']!r} ({current['baseline_id']}), "
                "and AWS cannot change it; allowed: the existing operating system, or replace_on_os_change=true "
                "to delete the baseline and create a new one (new ID), or another name"
            )
        self.check_delete(current)

    def create(self, desired):
        baseline_id = api.create_baseline(self.client, desired, desired.get("tags"))
        if desired["default"]:
            api.register_default(self.client, baseline_id)

    def update(self, current, desired, changed):
        if "operating_system" in changed:
            self.delete(current)
            self.create(desired)
            return
        baseline_id = current["baseline_id"]
        if "default" in changed:  # first: finding AWS's own default can fail, and then nothing is written yet
            self._set_default(current, desired["default"])
        if set(changed) & set(api.BASELINE_FIELDS):
            api.update_baseline(self.client, baseline_id, desired)
        if "tags" in changed:
            apply_tags(self.client, api.RESOURCE_TYPE, baseline_id, current["tags"], desired["tags"])

    def _set_default(self, baseline, make_default):
        """Register this baseline as its OS's default, or give the default back to AWS's own baseline."""
        if make_default:
            api.register_default(self.client, baseline["baseline_id"])
        else:
            aws_default = api.aws_default_baseline(self.client, baseline["operating_system"])
            api.register_default(self.client, aws_default["baseline_id"])

    def check_delete(self, current):
        groups = current["patch_groups"]
        if groups and not self.params["deregister_patch_groups"]:
            raise ParameterError(
                f"state: the baseline {current['name']!r} ({current['baseline_id']}) cannot be deleted: patch groups "
                f"{', '.join(groups)} use it; deregister them first (fleetpatch.ssm.patch_group state=absent) or set "
                "deregister_patch_groups=true"
            )

    def delete(self, current):
        """AWS refuses to delete a baseline that is the default or has patch groups (ResourceInUseException)."""
        if current.get("default"):
            self._set_default(current, False)
        for group in current["patch_groups"]:
            api.deregister_patch_group(self.client, current["baseline_id"], group)
        api.delete_baseline(self.client, current["baseline_id"])

    def predict(self, current, desired):
        predicted = super().predict(current, desired)
        if current is None or current["operating_system"] != desired["operating_system"]:
            predicted.update(baseline_id=None, patch_groups=[], created_date=None, modified_date=None)
        return predicted


def argument_spec():
    return dict(
        name=dict(type="str", required=True),
        operating_system=dict(type="str", choices=list(OPERATING_SYSTEMS)),
        description=dict(type="str"),
        global_filters=dict(type="list", elements="dict", options=FILTER_OPTIONS),
        approval_rules=dict(
            type="list",
            elements="dict",
            options=dict(
                filters=dict(type="list", elements="dict", required=True, options=FILTER_OPTIONS),
                compliance_level=dict(type="str", choices=COMPLIANCE_LEVELS, default="UNSPECIFIED"),
                approve_after_days=dict(type="int"),
                approve_until_date=dict(type="str"),
                enable_non_security=dict(type="bool", default=False),
            ),
        ),
        approved_patches=dict(type="list", elements="str"),
        approved_patches_compliance_level=dict(type="str", choices=COMPLIANCE_LEVELS, default="UNSPECIFIED"),
        approved_patches_enable_non_security=dict(type="bool", default=False),
        rejected_patches=dict(type="list", elements="str"),
        rejected_patches_action=dict(type="str", choices=["ALLOW_AS_DEPENDENCY", "BLOCK"],
                                     default="ALLOW_AS_DEPENDENCY"),
        sources=dict(
            type="list",
            elements="dict",
            options=dict(
                name=dict(type="str", required=True),
                products=dict(type="list", elements="str", required=True),
                configuration=dict(type="str", required=True, no_log=True),
            ),
        ),
        available_security_updates_compliance_status=dict(type="str", choices=["COMPLIANT", "NON_COMPLIANT"]),
        default=dict(type="bool", default=False),
        replace_on_os_change=dict(type="bool", default=False),
        deregister_patch_groups=dict(type="bool", default=False),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )


def main():
    module = AnsibleAWSModule(
        argument_spec=argument_spec(),
        required_if=[("state", "present", ["operating_system"])],
        supports_check_mode=True,
    )
    ensure(PatchBaseline(module))


if __name__ == "__main__":
    main()
