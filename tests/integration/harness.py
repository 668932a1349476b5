# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Playbook integration tests against the lab: start it, run ansible-playbook, read back what happened.

The lab runs in the background through `fleetlab.labctl` (as `make lab-up` does), in a state directory of its
own, and its `env.sh` gives the exports ansible-playbook needs. Each playbook run records its task results and
recap with the `fleetpatch_record` callback (callback_plugins/), so tests assert on data, not on output text.
"""
from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

REPO = Path(__file__).resolve().parents[2]
LAB_DIR = REPO / "tests" / "lab"
COLLECTIONS = REPO / ".cache" / "collections"
PLAYBOOKS = Path(__file__).resolve().parent / "playbooks"
CALLBACK_PLUGINS = Path(__file__).resolve().parent / "callback_plugins"
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
PLAYBOOK_TIMEOUT = 600

# The developer's own AWS settings must never reach a playbook aimed at the lab.
_AWS_SETTINGS = ("AWS_", "BOTO_")
_PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")


@dataclass
class Lab:
    state_dir: Path
    env: dict[str, str]

    @property
    def accounts(self) -> list[str]:
        return self.env["FLEETLAB_ACCOUNTS"].split()


@dataclass
class TaskResult:
    task: str
    action: str
    host: str
    status: str  # ok | changed | failed | skipped | unreachable
    changed: bool
    result: dict
    ignore_errors: bool = False


@dataclass
class PlaybookResult:
    rc: int
    stats: dict[str, dict[str, int]]  # host -> ok, changed, failures, unreachable, skipped, rescued, ignored
    tasks: list[TaskResult]
    stdout: str
    stderr: str
    command: list[str] = field(default_factory=list)

    def task(self, name: str, host: str = "localhost") -> TaskResult:
        """The result of task `name` on `host` (the last one when the task ran more than once)."""
        matches = [t for t in self.tasks if t.task == name and t.host == host]
        if not matches:
            raise KeyError(f"no result for task {name!r} on {host!r}; tasks run: {sorted({t.task for t in self.tasks})}")
        return matches[-1]

    @property
    def changed(self) -> int:
        return sum(host["changed"] for host in self.stats.values())

    @property
    def failed(self) -> int:
        return sum(host["failures"] + host["unreachable"] for host in self.stats.values())

    @property
    def summary(self) -> str:
        """For assertion messages (`assert result.rc == 0, result.summary`): command, recap, tail of the output."""
        tail = "\n".join((self.stdout + self.stderr).splitlines()[-60:])
        return f"$ {shlex.join(self.command)}\nrc={self.rc} stats={self.stats}\n{tail}"


def read_env_file(path: Path) -> dict[str, str]:
    """The `export KEY=value` lines of the lab's env.sh (values are shell-quoted by fleetlab.server)."""
    env = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, value = line[len("export "):].split("=", 1)
            env[key] = shlex.split(value)[0] if value else ""
    return env


def _labctl(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(LAB_DIR))
    return subprocess.run(
        [sys.executable, "-m", "fleetlab.labctl", *args], env=env, capture_output=True, text=True, check=False
    )


def fleet_spec(fleet: str) -> str:
    """A fleet by name (a spec under tests/lab/fleets), a path, or `none` (an empty account)."""
    named = LAB_DIR / "fleets" / f"{fleet}.yml"
    return str(named) if named.exists() else fleet


def lab_state_dir(prefix: str, fallback: Path) -> Path:
    """A fresh state directory for a lab: under FLEETPATCH_TEST_LAB_ROOT when set (.ci/run stops labs left there
    by an interrupted run; any xdist worker may be the first to use it, so each one makes it), else `fallback`."""
    root = os.environ.get("FLEETPATCH_TEST_LAB_ROOT")
    if not root:
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback
    Path(root).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=root))


@contextlib.contextmanager
def running_lab(prefix: str, fleet: str, fallback: Path) -> Iterator[Lab]:
    """A lab of its own for a fixture (`fleet` as for start_lab), stopped however the fixture ends."""
    state_dir = lab_state_dir(prefix, fallback)
    started = start_lab(state_dir, fleet)
    try:
        yield started
    finally:
        stop_lab(state_dir)


def start_lab(state_dir: Path, fleet: str = "none") -> Lab:
    proc = _labctl("up", "--state-dir", str(state_dir), "--fleet", fleet_spec(fleet))
    if proc.returncode != 0:
        raise RuntimeError(f"the lab did not start (labctl up, rc {proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return Lab(state_dir=state_dir, env=read_env_file(state_dir / "env.sh"))


def stop_lab(state_dir: Path) -> None:
    proc = _labctl("down", "--state-dir", str(state_dir))
    if proc.returncode != 0:
        raise RuntimeError(f"labctl down failed (rc {proc.returncode}):\n{proc.stdout}{proc.stderr}")


def playbook_env(lab_env: dict[str, str], record_file: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of one ansible-playbook run: the lab's exports, the collections, the recording callback."""
    if not (COLLECTIONS / "ansible_collections" / "amazon" / "aws").is_dir():
        raise RuntimeError(f"amazon.aws is not in {COLLECTIONS}: run `make collections`")
    env = {k: v for k, v in os.environ.items() if not k.startswith(_AWS_SETTINGS) and k not in _PROXIES}
    env.update(lab_env)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
        ANSIBLE_CALLBACK_PLUGINS=str(CALLBACK_PLUGINS),
        ANSIBLE_CALLBACKS_ENABLED="fleetpatch_record",
        FLEETPATCH_RECORD_FILE=str(record_file),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="false",
        # No inventory is the normal case here (localhost plays): no warning about it.
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        ANSIBLE_LOCALHOST_WARNING="false",
        NO_PROXY="127.0.0.1,localhost",
    )
    env.update(extra or {})
    return env


def run_playbook(
    lab_env: dict[str, str],
    playbook: str | Path,
    extra_vars: dict | None = None,
    check: bool = False,
    diff: bool = False,
    env: dict[str, str] | None = None,
    inventory: str | Path | None = None,
) -> PlaybookResult:
    """Run `playbook` (relative paths are taken from the repository root) against the lab; never raises on rc."""
    command = [str(ANSIBLE_PLAYBOOK), str(REPO / playbook)]
    if inventory is not None:
        command += ["-i", str(inventory)]
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    if check:
        command.append("--check")
    if diff:
        command.append("--diff")
    with tempfile.TemporaryDirectory(prefix="fleetpatch-playbook-") as tmp:
        record_file = Path(tmp) / "record.json"
        proc = subprocess.run(
            command, cwd=REPO, env=playbook_env(lab_env, record_file, env), stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=PLAYBOOK_TIMEOUT, check=False,
        )
        # No record: ansible-playbook stopped before the play ended (syntax error, missing collection...).
        record = json.loads(record_file.read_text()) if record_file.exists() else {"tasks": [], "stats": {}}
    return PlaybookResult(
        rc=proc.returncode,
        stats=record["stats"],
        tasks=[TaskResult(**task) for task in record["tasks"]],
        stdout=proc.stdout,
        stderr=proc.stderr,
        command=command,
    )


def _plain_string(mapping: dict):
    """ansible-core 2.19 writes each untrusted string of `--list` output as {"__ansible_unsafe": "<text>"}."""
    return mapping["__ansible_unsafe"] if mapping.keys() == {"__ansible_unsafe"} else mapping


def inventory_listing(text: str) -> dict:
    """`ansible-inventory --list` output as plain data: untrusted strings read as the strings they are."""
    return json.loads(text, object_hook=_plain_string)
