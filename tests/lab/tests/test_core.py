"""The lab core: AWS-style model validation, multi-account isolation, throttling."""
from __future__ import annotations

import botocore.exceptions
import pytest


def _code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def test_accounts_are_isolated(aws, lab_server):
    from conftest import make_session

    other = make_session(lab_server.env["AWS_ENDPOINT_URL"], "299999999999").client(
        "ec2", endpoint_url=lab_server.env["AWS_ENDPOINT_URL"]
    )
    aws.launch("ubuntu-22.04", 2, {"PatchGroup": "prod-auto"})
    mine = [i for r in aws.ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    theirs = [i for r in other.describe_instances()["Reservations"] for i in r["Instances"]]
    assert len(mine) == 2
    assert not {i["InstanceId"] for i in mine} & {i["InstanceId"] for i in theirs}
    assert aws.client("sts").get_caller_identity()["Account"] == aws.account


def test_throttling_answers_like_aws(aws, control):
    control.post("/throttle", {"rates": {"GetServiceSetting": 1}, "burst": 1})
    try:
        ssm = aws.session.client(
            "ssm", endpoint_url=aws.endpoint,
            config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}),
        )
        with pytest.raises(botocore.exceptions.ClientError) as excinfo:
            for _ in range(5):
                ssm.get_service_setting(SettingId="/ssm/managed-instance/activation-tier")
        assert _code(excinfo) == "ThrottlingException"
        assert control.get("/throttle")["counts"]["throttled"] >= 1
    finally:
        control.post("/throttle", {})


def test_model_constraints_are_enforced_server_side(aws):
    # botocore checks only minimums client-side; AWS rejects a MaxConcurrency that breaks the model pattern.
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        aws.ssm.send_command(DocumentName="AWS-RunPatchBaseline", InstanceIds=["i-0123456789abcdef0"],
                             MaxConcurrency="0", Parameters={"Operation": ["Scan"]})
    assert _code(excinfo) == "ValidationException"
    assert "maxConcurrency" in str(excinfo.value)
    assert "regular expression pattern" in str(excinfo.value)


def test_lab_clock_advances(control):
    before = control.get("/clock")["offset_days"]
    after = control.post("/clock/advance", {"days": 7})["offset_days"]
    assert after == pytest.approx(before + 7)


def test_every_lab_error_code_is_an_aws_error_of_the_ssm_model():
    from fleetlab import errors, model

    shapes = model.service_model().shape_names
    codes = {cls.code for cls in vars(errors).values()
             if isinstance(cls, type) and issubclass(cls, errors.LabError) and cls is not errors.LabError}
    assert codes and codes <= set(shapes)


def test_every_served_operation_is_an_ssm_operation(lab_server):
    from fleetlab import api, model

    assert set(api.OPERATIONS) <= set(model.operation_names())


def test_an_account_can_refuse_assume_role_like_aws(lab_server, control):
    import conftest

    control.post("/sts/deny", {"accounts": ["288888888888"]})
    try:
        with pytest.raises(botocore.exceptions.ClientError) as excinfo:
            conftest.make_session(lab_server.env["AWS_ENDPOINT_URL"], "288888888888")
        assert _code(excinfo) == "AccessDenied"
        assert "sts:AssumeRole" in str(excinfo.value)
        conftest.make_session(lab_server.env["AWS_ENDPOINT_URL"], "288888888889")  # others still work
    finally:
        control.post("/sts/deny", {"accounts": []})
    conftest.make_session(lab_server.env["AWS_ENDPOINT_URL"], "288888888888")


def test_simulation_settings_are_checked(control):
    before = control.get("/settings")
    assert control.post("/settings", {"agent_seconds_per_node": 0.25})["agent_seconds_per_node"] == 0.25
    with pytest.raises(RuntimeError, match="unknown settings"):
        control.post("/settings", {"agent_speed": 2})
    control.post("/settings", before)
