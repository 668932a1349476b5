# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the playbook integration tests: one lab per test session, a `run_playbook` bound to it.

`make test-integration` runs the tests on 2 pytest-xdist workers, each with a lab of its own, in any order: a
test must not rely on what another test did (work in an AWS account of its own, for example).

FLEETPATCH_TEST_FLEET: the fleet the lab is seeded with (a name under tests/lab/fleets, a path, or `none`, the
default). FLEETPATCH_TEST_LAB_ROOT: where the lab's state directory is made (default: pytest's temporary
directory); .ci/run sets it so that it can stop a lab left behind by an interrupted run.
"""
from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402  pylint: disable=wrong-import-position
from accounts import account  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import


@pytest.fixture(scope="session")
def lab(tmp_path_factory) -> harness.Lab:
    with harness.running_lab("lab-", os.environ.get("FLEETPATCH_TEST_FLEET", "none"), tmp_path_factory.mktemp("lab")) as started:
        yield started


@pytest.fixture(scope="session")
def run_playbook(lab):
    """`run_playbook(playbook, extra_vars=None, check=False, diff=False, env=None, inventory=None)` -> PlaybookResult."""
    return functools.partial(harness.run_playbook, lab.env)
