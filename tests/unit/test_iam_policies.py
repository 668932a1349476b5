# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""docs/iam grants exactly what the collection's code calls (tests/tools/iam_actions.py), and the scan is sound."""
from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import iam_actions  # noqa: E402  pylint: disable=wrong-import-position

POLICIES = iam_actions.POLICY_DIR


@pytest.fixture(scope="module")
def uses():
    return iam_actions.code_uses()


@pytest.fixture
def policies(tmp_path):
    """A copy of docs/iam to mutate."""
    copy = tmp_path / "iam"
    shutil.copytree(POLICIES, copy)
    return copy


def edit(policy_dir: Path, name: str, change) -> None:
    path = policy_dir / name
    policy = json.loads(path.read_text())
    change(policy)
    path.write_text(json.dumps(policy))


def drop_action(action: str):
    def change(policy):
        for statement in policy["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            statement["Action"] = [a for a in actions if a != action]
        policy["Statement"] = [s for s in policy["Statement"] if s["Action"]]
    return change


def add_action(action: str):
    def change(policy):
        policy["Statement"].append({"Effect": "Allow", "Action": [action], "Resource": "*"})
    return change


# ---------------------------------------------------------------------------------------------- the documents

def test_the_policies_grant_exactly_what_the_code_calls(uses):
    assert iam_actions.check(POLICIES, uses) == []


@pytest.mark.parametrize("policy, action", [
    ("target-role-policy.json", "ssm:SendCommand"),             # run_patch_baseline
    ("target-role-policy.json", "ssm:UpdatePatchBaseline"),     # patch_baseline
    ("target-role-policy.json", "iam:PassRole"),                # window task service role, activation role
    ("target-role-policy.json", "ec2:DescribeInstances"),       # report EC2 names, fleet inventory
    ("target-role-policy.json", "tag:GetResources"),            # fleet inventory: hybrid nodes' tags
    ("controller-role-policy.json", "sts:AssumeRole"),          # every account's role
])
def test_an_action_removed_from_a_policy_fails_the_check(uses, policies, policy, action):
    edit(policies, policy, drop_action(action))
    problems = iam_actions.check(policies, uses)
    assert any(f"neither grants {action}, which the code calls" in problem for problem in problems), problems


def test_an_action_the_code_never_calls_fails_the_check(uses, policies):
    edit(policies, "target-role-policy.json", add_action("ssm:DeleteDocument"))
    assert iam_actions.check(policies, uses) == [
        "target-role-policy.json: grants ssm:DeleteDocument, which nothing needs"]


def test_a_wildcard_action_fails_the_check(uses, policies):
    edit(policies, "controller-role-policy.json", add_action("ssm:Describe*"))
    assert "controller-role-policy.json: wildcard action 'ssm:Describe*' (list the actions)" in iam_actions.check(
        policies, uses)


def test_the_agent_roles_grant_exactly_the_documented_agent_actions(uses, policies):
    edit(policies, "hybrid-activation-role-policy.json", drop_action("ssm:UpdateInstanceInformation"))
    edit(policies, "instance-profile-policy.json", add_action("ssm:SendCommand"))
    assert iam_actions.check(policies, uses) == [
        "instance-profile-policy.json: grants ssm:SendCommand, which nothing needs",
        "hybrid-activation-role-policy.json: lacks ssm:UpdateInstanceInformation",
    ]


def test_the_cross_account_trust_needs_the_external_id(uses, policies):
    edit(policies, "target-role-trust-policy.json", lambda policy: policy["Statement"][0].pop("Condition"))
    assert iam_actions.check(policies, uses) == [
        "target-role-trust-policy.json: no StringEquals sts:ExternalId condition (targets[].external_id)"]


def test_the_hybrid_role_trust_needs_the_confused_deputy_conditions(uses, policies):
    edit(policies, "hybrid-activation-role-trust-policy.json",
         lambda policy: policy["Statement"][0]["Condition"].pop("ArnEquals"))
    assert iam_actions.check(policies, uses) == [
        "hybrid-activation-role-trust-policy.json: no ArnEquals/ArnLike aws:SourceArn arn:aws:ssm:... condition"]


def test_the_scan_finds_the_calls_of_the_engine_and_the_inventory(uses):
    where = {use.action: use.where for use in uses}
    assert where["ssm:SendCommand"].startswith("plugins/module_utils/commands.py:")
    assert where["ssm:DescribeInstancePatchStates"].startswith("plugins/module_utils/")  # through paginate()
    assert "ec2:DescribeRegions" in where and "organizations:ListAccounts" in where    # fleet inventory
    assert "sts:GetCallerIdentity" not in iam_actions.required_actions(uses)


# ---------------------------------------------------------------------------------------------- the scan

def scan(tmp_path: Path, source: str) -> set:
    package = tmp_path / "plugins" / "module_utils"
    package.mkdir(parents=True, exist_ok=True)
    (package / "sample.py").write_text(textwrap.dedent(source))
    found = iam_actions.PythonScan(iam_actions.Catalog(), tmp_path, dirs=("plugins/module_utils",)).run()
    return {use.action for use in found}


def test_clients_are_known_by_their_creation_name_and_the_engine_convention(tmp_path):
    assert scan(tmp_path, """
        def main(module, sessions, scope):
            module_client = module.client("ec2")
            module_client.describe_instances()
            sessions.client(scope, "sts").assume_role(RoleArn="r", RoleSessionName="s")
            client = ssm_client(module)
            client.get_patch_baseline(BaselineId="pb-1")

        def helper(client, organizations):
            client.list_tags_for_resource(ResourceType="PatchBaseline", ResourceId="pb-1")
            organizations.list_accounts()
    """) == {"ec2:DescribeInstances", "sts:AssumeRole", "ssm:GetPatchBaseline", "ssm:ListTagsForResource",
             "organizations:ListAccounts"}


def test_operations_named_by_string_reach_the_model(tmp_path):
    assert scan(tmp_path, """
        def pages(client, method, **params):
            return client.get_paginator(method).paginate(**params)

        def items(client, method, key):
            return [item for page in pages(client, method) for item in page[key]]

        def main(module):
            ssm = ssm_client(module)
            items(ssm, "describe_instance_patch_states", "InstancePatchStates")
            module.client("ec2").get_paginator("describe_instances")
            ssm.get_waiter("command_executed")
    """) == {"ssm:DescribeInstancePatchStates", "ec2:DescribeInstances", "ssm:GetCommandInvocation"}


def test_a_service_whose_iam_prefix_is_not_its_signing_name_gets_its_iam_prefix(tmp_path):
    # The Resource Groups Tagging API signs requests as "tagging"; IAM knows its actions as tag:...
    assert scan(tmp_path, """
        def main(session):
            tagging = session.client("resourcegroupstaggingapi")
            tagging.get_paginator("get_resources")
            tagging.get_tag_keys()
    """) == {"tag:GetResources", "tag:GetTagKeys"}


def test_a_client_of_unknown_service_stops_the_scan(tmp_path):
    with pytest.raises(iam_actions.ScanError, match=r"sample.py:4: cannot tell which AWS service's client 'thing'"):
        scan(tmp_path, """
            def main(module, make):
                module.client("ssm")
                thing = make(); thing.describe_instance_information()
        """)


def test_an_operation_name_the_scan_cannot_read_stops_it(tmp_path):
    with pytest.raises(iam_actions.ScanError, match="not a string literal"):
        scan(tmp_path, """
            def main(module, names):
                module.client("ssm").get_paginator(names[0])
        """)


def test_an_engine_client_call_that_is_not_an_ssm_operation_stops_the_scan(tmp_path):
    with pytest.raises(iam_actions.ScanError, match="describe_instances is not an operation of the ssm client"):
        scan(tmp_path, """
            def main(module, client):
                module.client("ec2")
                client.describe_instances()
        """)


def test_amazon_aws_tasks_map_to_their_actions_and_unknown_ones_stop_the_scan(tmp_path):
    tasks = tmp_path / "roles" / "r" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "main.yml").write_text(textwrap.dedent("""\
        - name: Work
          module_defaults: {amazon.aws.s3_object: {region: eu-west-1}}
          block:
            - name: Fetch
              amazon.aws.s3_object: {bucket: b, object: k, dest: /tmp/k, mode: get}
              vars: {unsafe: !unsafe "{{ raw }}"}
    """))
    assert {use.action for use in iam_actions.task_uses(tmp_path)} == {
        "s3:ListBucket", "s3:GetBucketOwnershipControls", "s3:GetObject"}
    (tasks / "more.yml").write_text("- name: Delete\n  amazon.aws.s3_object: {bucket: b, object: k, mode: delobj}\n")
    with pytest.raises(iam_actions.ScanError, match="amazon.aws.s3_object:delobj is not in AMAZON_AWS_TASK_ACTIONS"):
        iam_actions.task_uses(tmp_path)
