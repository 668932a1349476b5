# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The integration harness itself: a playbook reaches the lab through amazon.aws and its results come back."""
from __future__ import annotations


def test_playbook_reaches_the_lab_and_reports_per_task(lab, run_playbook):
    account = lab.accounts[0]

    result = run_playbook("tests/integration/playbooks/caller_identity.yml", extra_vars={"expected_account": account})

    assert result.rc == 0, result.summary
    assert result.stats == {
        "localhost": {"ok": 2, "changed": 0, "failures": 0, "unreachable": 0, "skipped": 0, "rescued": 0, "ignored": 0}
    }
    caller = result.task("Caller identity")
    assert caller.action == "amazon.aws.aws_caller_info"
    assert caller.status == "ok"
    assert caller.result["account"] == account
    assert f":{account}:" in caller.result["arn"]


def test_failed_task_is_reported(lab, run_playbook):
    result = run_playbook("tests/integration/playbooks/caller_identity.yml", extra_vars={"expected_account": "000000000000"})

    assert result.rc == 2, result.summary
    assert result.failed == 1
    assert result.task("The lab's account").status == "failed"
