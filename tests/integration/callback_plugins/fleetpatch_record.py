# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Records every task result and the play recap as JSON for tests/integration/harness.py.

ansible-core has no JSON callback (ansible.posix's is not available here), and a stdout callback would replace
the human-readable output that pytest shows when a test fails. This aggregate callback runs beside the default
one and writes one file when the playbook ends.
"""
from __future__ import annotations

DOCUMENTATION = r"""
name: fleetpatch_record
type: aggregate
short_description: record task results and the recap of a playbook run as JSON (integration tests only)
description:
  - When the playbook ends, writes a JSON object with C(tasks) (one entry per task and host) and C(stats) (the recap
    per host) to the file named by E(FLEETPATCH_RECORD_FILE).
requirements:
  - enabled in ANSIBLE_CALLBACKS_ENABLED
options:
  record_file:
    description: Where the JSON record is written.
    required: true
    type: path
    env:
      - name: FLEETPATCH_RECORD_FILE
"""

import json

from ansible.module_utils.common.json import AnsibleJSONEncoder
from ansible.plugins.callback import CallbackBase

RECAP_FIELDS = ("ok", "changed", "failures", "unreachable", "skipped", "rescued", "ignored")


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "fleetpatch_record"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.tasks = []

    # The public `host`, `task` and `result` of a task result are ansible-core 2.19's (the pinned test version).
    def _record(self, result, status, **flags):
        self.tasks.append({
            "task": result.task_name,
            "action": result.task.action,
            "host": result.host.get_name(),
            "status": status,
            "changed": bool(result.result.get("changed", False)),
            **flags,
            "result": result.result,
        })

    def v2_runner_on_ok(self, result):
        self._record(result, "changed" if result.result.get("changed") else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed", ignore_errors=ignore_errors)

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        recap = {host: stats.summarize(host) for host in sorted(stats.processed)}
        record = {"tasks": self.tasks, "stats": {host: {k: recap[host][k] for k in RECAP_FIELDS} for host in recap}}
        with open(self.get_option("record_file"), "w", encoding="utf-8") as handle:
            json.dump(record, handle, cls=AnsibleJSONEncoder, indent=1)
