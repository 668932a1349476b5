# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleetpatch.ssm.hybrid_activation on a stubbed SSM client: found by its name tag, never updated (replaced or
refused), the code returned only by the task that created the activation, checks made before any write."""
from __future__ import annotations

import datetime

import pytest
from botocore.stub import ANY

from ansible_collections.fleetpatch.ssm.plugins.modules import hybrid_activation
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import NOW
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import record_params
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import run_module
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import stubbed

NAME = "azure-wave"
ROLE = "SSMHybridNodes"
OLD_ID = "11111111-1111-4111-8111-111111111111"
NEW_ID = "22222222-2222-4222-8222-222222222222"
CODE = "dRmgnYaFv567vEXAMPLE"


def record(activation_id=OLD_ID, name=NAME, limit=1, count=0, expired=False, **members) -> dict:
    """A DescribeActivations record of an activation tagged with `name` (the model's RegistrationsCount is 1 or
    more: AWS leaves it out before the first registration)."""
    found = dict({
        "ActivationId": activation_id, "IamRole": ROLE, "RegistrationLimit": limit,
        "ExpirationDate": NOW + datetime.timedelta(hours=24), "Expired": expired, "CreatedDate": NOW,
        "Tags": [{"Key": "fleetpatch:activation", "Value": name}],
    }, **members)
    if count:
        found["RegistrationsCount"] = count
    return found


def expect_list(stubber, records, activation_id=None):
    filters = [{"FilterKey": "ActivationIds", "FilterValues": [activation_id]}] if activation_id else []
    stubber.add_response("describe_activations", {"ActivationList": records}, {"Filters": filters, "MaxResults": 50})


def expect_create(stubber, expiry=False):
    expected = {"IamRole": ANY, "RegistrationLimit": ANY, "Tags": ANY}
    if expiry:
        expected["ExpirationDate"] = ANY
    stubber.add_response("create_activation", {"ActivationId": NEW_ID, "ActivationCode": CODE}, expected)


def expect_delete(stubber, activation_id=OLD_ID):
    stubber.add_response("delete_activation", {}, {"ActivationId": activation_id})


def run(args, calls=(), check_mode=False, no_log=True, sent=None):
    """Run the module with `args` on a client answering `calls` (each a function of the stubber)."""
    with stubbed() as (client, stubber):
        for queue in calls:
            queue(stubber)
        if sent is not None:
            sent.append(record_params(client, "CreateActivation"))
        args = dict({"name": NAME, "iam_role": ROLE, "_ansible_no_log": no_log}, **args)
        return run_module(hybrid_activation.main, args, client, check_mode=check_mode)


def test_create_returns_the_code_and_tags_the_activation_with_its_name():
    sent = []
    result = run({"expires_in_hours": 4, "tags": {"Owner": "platform"}, "iam_role": f"arn:aws:iam::123456789012:role/"
                  f"service-role/{ROLE}"},
                 [lambda s: expect_list(s, []), lambda s: expect_create(s, expiry=True),
                  lambda s: expect_list(s, [record(NEW_ID, IamRole=f"service-role/{ROLE}",
                                                   Tags=[{"Key": "Owner", "Value": "platform"},
                                                         {"Key": "fleetpatch:activation", "Value": NAME}])], NEW_ID)],
                 sent=sent)
    assert result["changed"] is True and result["activation_code"] == CODE
    assert result["activation"]["activation_id"] == NEW_ID and result["activation"]["tags"] == {"Owner": "platform"}
    (request,) = sent[0]
    assert request["IamRole"] == f"service-role/{ROLE}"  # the role's name with its path, not its ARN
    assert request["Tags"] == [{"Key": "Owner", "Value": "platform"}, {"Key": "fleetpatch:activation", "Value": NAME}]
    lifetime = request["ExpirationDate"] - datetime.datetime.now(datetime.timezone.utc)
    assert datetime.timedelta(hours=3, minutes=59) < lifetime <= datetime.timedelta(hours=4)
    assert CODE not in str(result["diff"])


def test_without_an_expiry_aws_default_applies():
    sent = []
    result = run({}, [lambda s: expect_list(s, []), expect_create,
                      lambda s: expect_list(s, [record(NEW_ID)], NEW_ID)], sent=sent)
    assert result["changed"] is True
    assert "ExpirationDate" not in sent[0][0]


def test_an_existing_usable_activation_with_the_same_settings_is_no_change_and_no_code():
    result = run({"expires_in_hours": 4}, [lambda s: expect_list(s, [record(name="other", activation_id=NEW_ID),
                                                                     record()])])
    assert result["changed"] is False and "activation_code" not in result
    assert result["activation"]["activation_id"] == OLD_ID and result["activation"]["usable"] is True


def test_check_mode_predicts_a_new_activation_without_creating_it():
    result = run({"registration_limit": 5}, [lambda s: expect_list(s, [])], check_mode=True)
    assert result["changed"] is True and "activation_code" not in result
    assert result["activation"]["activation_id"] is None
    assert result["activation"]["registrations_remaining"] == 5


def test_different_settings_fail_naming_the_fields_without_writing():
    result = run({"registration_limit": 5, "description": "new"}, [lambda s: expect_list(s, [record()])])
    assert result["failed"] is True
    assert result["msg"].startswith(f"description: the activation '{NAME}' ({OLD_ID}) differs from the task in "
                                    "description (None -> 'new'), registration_limit (1 -> 5)")
    assert "replace_on_change=true" in result["msg"]


def test_different_settings_replace_the_activation_when_asked():
    result = run({"registration_limit": 5, "replace_on_change": True},
                 [lambda s: expect_list(s, [record()]), expect_delete, expect_create,
                  lambda s: expect_list(s, [record(NEW_ID, limit=5)], NEW_ID)])
    assert result["changed"] is True and result["activation_code"] == CODE
    assert result["diff"] == {"before": {"iam_role": ROLE, "registration_limit": 1},
                              "after": {"iam_role": ROLE, "registration_limit": 5}}


@pytest.mark.parametrize("existing, reason", [
    (record(expired=True), "expired at"),
    (record(limit=2, count=2), "has used all 2 of its registrations"),
])
def test_an_unusable_activation_is_reported_and_kept(existing, reason):
    limit = existing["RegistrationLimit"]
    result = run({"registration_limit": limit}, [lambda s: expect_list(s, [existing])])
    assert result["changed"] is False and "activation_code" not in result
    assert result["activation"]["usable"] is False
    assert reason in result["warnings"][0] and "replace_unusable=true" in result["warnings"][0]


def test_an_unusable_activation_is_replaced_when_asked():
    result = run({"replace_unusable": True},
                 [lambda s: expect_list(s, [record(expired=True)]), expect_delete, expect_create,
                  lambda s: expect_list(s, [record(NEW_ID)], NEW_ID)])
    assert result["changed"] is True and result["activation_code"] == CODE
    assert result["diff"]["before"]["usable"] is False and result["diff"]["after"]["usable"] is True


def test_absent_deletes_every_activation_of_the_name():
    result = run({"state": "absent"}, [lambda s: expect_list(s, [record(), record(NEW_ID)]),
                                       lambda s: expect_delete(s, NEW_ID), expect_delete], no_log=False)
    assert result["changed"] is True and result["activation"] is None


@pytest.mark.parametrize("error, failed", [("InvalidActivationId", False), ("AccessDeniedException", True)])
def test_an_activation_deleted_meanwhile_is_what_absent_asked_for_and_other_errors_fail(error, failed):
    result = run({"state": "absent"}, [lambda s: expect_list(s, [record()]), lambda s: s.add_client_error(
        "delete_activation", error, expected_params={"ActivationId": OLD_ID})], no_log=False)
    assert result.get("failed", False) is failed
    if failed:
        assert result["msg"].startswith("Failed to delete activation")
    else:
        assert result["changed"] is True and result["activation"] is None


def test_absent_when_there_is_none_is_no_change():
    result = run({"state": "absent"}, [lambda s: expect_list(s, [record(name="other")])], no_log=False)
    assert result == {"changed": False, "activation": None}


def tier(stubber, value="standard", nodes=0):
    stubber.add_response("get_service_setting", {"ServiceSetting": {"SettingValue": value}},
                         {"SettingId": "/ssm/managed-instance/activation-tier"})
    stubber.add_response("describe_instance_information", {"InstanceInformationList": [
        {"InstanceId": f"mi-{n:017x}", "ResourceType": "ManagedInstance"} for n in range(nodes)]},
        {"Filters": [{"Key": "ResourceType", "Values": ["ManagedInstance"]}], "MaxResults": 50})


@pytest.mark.parametrize("tier_check, failed", [("warn", False), ("fail", True)])
def test_planned_nodes_beyond_the_standard_tier_warn_or_fail_before_any_write(tier_check, failed):
    calls = [lambda s: expect_list(s, []), lambda s: tier(s, nodes=3)]
    result = run({"planned_nodes": 998, "tier_check": tier_check}, calls, check_mode=True)
    problem = "planned_nodes: 998 more hybrid nodes do not fit the standard instance tier: 3 of its 1000"
    if failed:
        assert result["failed"] is True and result["msg"].startswith(problem)
    else:
        assert result["changed"] is True and result["warnings"][0].startswith(problem)
        assert result["tier"] == {"tier": "standard", "hybrid_nodes": 3, "limit": 1000, "available": 997}
        assert result["activation"]["registration_limit"] == 998  # sized to the planned nodes


def test_the_advanced_tier_has_no_hybrid_node_limit():
    result = run({"planned_nodes": 1000}, [lambda s: expect_list(s, []), lambda s: tier(s, "advanced", 5)],
                 check_mode=True)
    assert "warnings" not in result
    assert result["tier"] == {"tier": "advanced", "hybrid_nodes": 5, "limit": None, "available": None}


def test_present_is_refused_on_a_task_without_no_log():
    result = run({}, no_log=False)
    assert result["failed"] is True and result["msg"].startswith("no_log: this task can return an activation code")


@pytest.mark.parametrize("args, message", [
    ({"registration_limit": 0}, "registration_limit: 0 is out of range; allowed: 1 to 1000"),
    ({"planned_nodes": 1001}, "planned_nodes: 1001 is out of range; allowed: 1 to 1000"),
    ({"planned_nodes": 5, "registration_limit": 2}, "planned_nodes: 5 is more than registration_limit (2)"),
    ({"expires_in_hours": 721}, "expires_in_hours: 721 is out of range; allowed: 1 to 720"),
    ({"expiration": "soon"}, "expiration: 'soon' is not a date; allowed: YYYY-MM-DD"),
    ({"expiration": "2020-01-01"}, "expiration: '2020-01-01' is out of range; allowed: a time in the next 30 days"),
    ({"iam_role": "r" * 65}, f"iam_role: '{'r' * 65}' has 65 characters; allowed: 1 to 64"),
    ({"default_instance_name": "web;01"}, "default_instance_name: 'web;01' contains ';'"),
    ({"tags": {"fleetpatch:activation": "x"}}, "tags: 'fleetpatch:activation' is the tag that holds"),
    ({"name": "wave#1"}, "name: 'wave#1' contains '#'"),
])
def test_invalid_options_fail_naming_the_field_before_any_call(args, message):
    result = run(args)
    assert result["failed"] is True and result["msg"].startswith(message)


def test_an_explicit_expiration_is_a_setting_compared_with_the_activation():
    expiration = (NOW + datetime.timedelta(hours=24)).isoformat()
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=2)
    result = run({"expiration": later.strftime("%Y-%m-%dT%H:%M:%SZ")}, [lambda s: expect_list(s, [record()])])
    assert result["failed"] is True and result["msg"].startswith("expiration_date: the activation")
    assert expiration in result["msg"]
