# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine: retries, paging, errors and the declarative cycle every module runs."""
from __future__ import annotations

import pytest

from ansible_collections.fleetpatch.ssm.plugins.module_utils import ssm
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import ParameterError
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import ModuleExit
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import identity
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import no_sleep
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import raw_client
from ansible_collections.fleetpatch.ssm.tests.unit.plugins.module_utils.ssm_stubs import stubbed


# ------------------------------------------------------------------------------------------------ paging, retries

@pytest.mark.parametrize("method, size", [
    ("describe_patch_baselines", 50),  # model allows 1-100: capped at 50
    ("describe_instance_information", 50),  # 5-50
    ("describe_patch_properties", 50),  # 1-50
    ("describe_maintenance_windows", 50),  # 10-100
    ("describe_instance_patch_states", 50),  # 10-100
])
def test_page_size_is_the_models_limit_capped_at_50(method, size):
    assert ssm.page_size(raw_client(), method) == size


def test_throttling_is_retried_per_page_without_reading_earlier_pages_again():
    page = {"Filters": [], "MaxResults": 50}
    with stubbed() as (client, stubber), no_sleep() as sleep:
        stubber.add_response("describe_patch_baselines",
                             {"BaselineIdentities": [identity("web-a", "UBUNTU", 1)], "NextToken": "t2"}, page)
        stubber.add_client_error("describe_patch_baselines", "ThrottlingException", http_status_code=400,
                                 expected_params=dict(page, NextToken="t2"))
        stubber.add_client_error("describe_patch_baselines", "ThrottlingException", http_status_code=400,
                                 expected_params=dict(page, NextToken="t2"))
        stubber.add_response("describe_patch_baselines", {"BaselineIdentities": [identity("web-b", "UBUNTU", 2)]},
                             dict(page, NextToken="t2"))
        items = ssm.paginated_items(client, "describe_patch_baselines", "BaselineIdentities", Filters=[])
    assert [item["BaselineName"] for item in items] == ["web-a", "web-b"]
    assert sleep.call_count == 2  # backed off twice, jittered (AWSRetry.jittered_backoff)


@pytest.mark.parametrize("code", ["ThrottlingException", "TooManyUpdates", "InternalServerError", "Throttling"])
def test_transient_errors_are_retried(code):
    with stubbed() as (client, stubber):
        stubber.add_client_error("register_default_patch_baseline", code)
        stubber.add_response("register_default_patch_baseline", {"BaselineId": "pb-00000000000000001"})
        client.register_default_patch_baseline(BaselineId="pb-00000000000000001", aws_retry=True)


def test_other_errors_are_not_retried():
    with stubbed() as (client, stubber):
        stubber.add_client_error("register_default_patch_baseline", "DoesNotExistException")
        with pytest.raises(Exception, match="DoesNotExistException"):
            client.register_default_patch_baseline(BaselineId="pb-00000000000000001", aws_retry=True)


# ------------------------------------------------------------------------------------------------ the cycle

class FakeModule:
    """The part of AnsibleAWSModule that ensure() uses."""

    def __init__(self, check_mode=False, **params):
        self.params = dict({"state": "present"}, **params)
        self.check_mode = check_mode
        self.warnings = []

    def exit_json(self, **result):
        raise ModuleExit(result)

    def fail_json(self, **result):
        raise ModuleExit(dict(result, failed=True))

    def fail_json_aws(self, exception, msg=None, **result):
        raise ModuleExit(dict(result, failed=True, msg=msg, exception=exception))

    def warn(self, message):
        self.warnings.append(message)


class Thing(ssm.ManagedResource):
    """A resource held in a dict, recording the writes the engine asks for."""

    result_key = "thing"

    def __init__(self, module, stored=None):
        super().__init__(module, client=object())
        self.stored = stored
        self.writes = []

    def validate(self):
        if self.params.get("size", 0) > 10:
            raise ParameterError(f"size: {self.params['size']} is out of range; allowed: 0 to 10")

    def read(self):
        return None if self.stored is None else dict(self.stored)

    def desired(self, current):
        return {"name": self.params["name"], "size": self.params.get("size", 0)}

    def create(self, desired):
        self.writes.append(("create", desired))
        self.stored = dict(desired, thing_id="t-1")

    def update(self, current, desired, changed):
        self.writes.append(("update", changed))
        self.stored.update(desired)

    def check_delete(self, current):
        if self.params.get("refuse"):
            raise ParameterError("state: the thing is in use")

    def delete(self, current):
        self.writes.append(("delete", current["thing_id"]))
        self.stored = None


def run(resource):
    with pytest.raises(ModuleExit) as exited:
        ssm.ensure(resource)
    return exited.value.result


def test_create_reports_the_state_read_back_and_a_diff():
    thing = Thing(FakeModule(name="a", size=2))
    result = run(thing)
    assert thing.writes == [("create", {"name": "a", "size": 2})]
    assert result == {"changed": True, "thing": {"name": "a", "size": 2, "thing_id": "t-1"},
                      "diff": {"before": {}, "after": {"name": "a", "size": 2}}}


def test_check_mode_predicts_without_writing():
    thing = Thing(FakeModule(check_mode=True, name="a", size=2))
    result = run(thing)
    assert thing.writes == []
    assert result["changed"] is True and result["thing"] == {"name": "a", "size": 2}


def test_no_change_means_no_write():
    thing = Thing(FakeModule(name="a", size=2), stored={"name": "a", "size": 2, "thing_id": "t-1"})
    assert run(thing) == {"changed": False, "thing": {"name": "a", "size": 2, "thing_id": "t-1"}}
    assert thing.writes == []


def test_update_is_told_which_fields_changed_and_the_diff_shows_only_managed_fields():
    thing = Thing(FakeModule(name="a", size=3), stored={"name": "a", "size": 2, "thing_id": "t-1"})
    result = run(thing)
    assert thing.writes == [("update", ["size"])]
    assert result["diff"] == {"before": {"name": "a", "size": 2}, "after": {"name": "a", "size": 3}}


def test_absent_deletes_once_and_then_reports_no_change():
    thing = Thing(FakeModule(name="a", state="absent"), stored={"name": "a", "size": 2, "thing_id": "t-1"})
    assert run(thing)["changed"] is True
    assert run(thing) == {"changed": False, "thing": None}
    assert thing.writes == [("delete", "t-1")]


def test_a_refused_delete_fails_in_check_mode_too():
    for check_mode in (True, False):
        thing = Thing(FakeModule(check_mode=check_mode, name="a", state="absent", refuse=True),
                      stored={"name": "a", "size": 2, "thing_id": "t-1"})
        assert run(thing) == {"msg": "state: the thing is in use", "failed": True}
        assert thing.writes == []


def test_invalid_parameters_fail_before_anything_is_read_or_written():
    class Unreadable(Thing):
        def read(self):
            raise AssertionError("read after a validation failure")

    thing = Unreadable(FakeModule(name="a", size=11))
    assert run(thing) == {"msg": "size: 11 is out of range; allowed: 0 to 10", "failed": True}
    assert thing.writes == []


def test_aws_errors_fail_with_what_the_module_was_doing():
    with stubbed() as (client, stubber):
        stubber.add_client_error("get_patch_baseline", "AccessDeniedException", "not allowed")

        @ssm.SSMErrorHandler.common_error_handler("read the thing")
        def read_thing():
            return client.get_patch_baseline(BaselineId="pb-00000000000000001", aws_retry=True)

        class AwsThing(Thing):
            def read(self):
                return read_thing()

        result = run(AwsThing(FakeModule(name="a")))
    assert result["failed"] is True and result["msg"] == "Failed to read the thing"
    assert result["exception"].response["Error"]["Code"] == "AccessDeniedException"


def test_outputs_reach_the_result_on_success_and_on_failure():
    """What AWS returns once (an activation code) is not lost when a later step of the task fails."""
    class Once(Thing):
        def create(self, desired):
            super().create(desired)
            self.outputs["secret"] = "given-once"

    assert run(Once(FakeModule(name="a")))["secret"] == "given-once"

    class FailsAfterCreate(Once):
        def read(self):
            if self.outputs:
                raise ParameterError("the re-read failed")
            return super().read()

    result = run(FailsAfterCreate(FakeModule(name="a")))
    assert result["failed"] is True and result["secret"] == "given-once"
