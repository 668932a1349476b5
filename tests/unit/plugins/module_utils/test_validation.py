# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared field checks: each failure names the field, shows the value and says what is allowed."""
from __future__ import annotations

import re

import pytest

from ansible_collections.fleetpatch.ssm.plugins.module_utils import validation as v
from ansible_collections.fleetpatch.ssm.plugins.module_utils.validation import ParameterError


def test_field_path_reads_like_the_users_yaml():
    assert v.field_path("approval_rules", 0, "filters", 2, "values") == "approval_rules[0].filters[2].values"
    assert v.field_path("name") == "name"


@pytest.mark.parametrize("check, args, message", [
    (v.check_range, ("days", 361, 0, 360), "days: 361 is out of range; allowed: 0 to 360"),
    (v.check_range, ("days", -1, 0, 360), "days: -1 is out of range; allowed: 0 to 360"),
    (v.check_count, ("rules", [1] * 11, 10), "rules: 11 entries; allowed: at most 10"),
    (v.check_count, ("values", [], 20, 1), "values: 0 entries; allowed: at least 1"),
    (v.check_length, ("description", "", 1, 1024), "description: '' has 0 characters; allowed: 1 to 1024"),
    (v.check_pattern, ("name", "a b", r"[a-z]+", "lowercase letters"), "name: 'a b' is not valid; allowed: lowercase"),
    (v.check_date, ("until", "2026-02-30"), "until: '2026-02-30' is not a date; allowed: YYYY-MM-DD"),
    (v.check_date, ("until", "20261231"), "until: '20261231' is not a date"),
    (v.check_unique, ("keys", ["A", "B", "A"]), "keys: 'A' is given more than once"),
    (v.check_tag_characters, ("group", "prod;auto"), "group: 'prod;auto' contains ';'"),
])
def test_failures_name_field_value_and_what_is_allowed(check, args, message):
    with pytest.raises(ParameterError, match="^" + re.escape(message)):
        check(*args)


@pytest.mark.parametrize("check, args", [
    (v.check_range, ("days", 0, 0, 360)),
    (v.check_range, ("days", None, 0, 360)),
    (v.check_count, ("rules", None, 10)),
    (v.check_length, ("description", None, 1, 1024)),
    (v.check_date, ("until", "2028-02-29")),
    (v.check_tag_characters, ("group", "Prod auto_1.x:y/z=+-@ üñí")),
])
def test_valid_values_and_unset_options_pass(check, args):
    check(*args)


def test_canonical_choice_matches_any_case_and_returns_the_documented_spelling():
    assert v.canonical_choice("values[0]", "securityUPDATES", ("CriticalUpdates", "SecurityUpdates")) == \
        "SecurityUpdates"
    with pytest.raises(ParameterError, match=r"values\[0\]: 'Security' is not valid; allowed: CriticalUpdates, "):
        v.canonical_choice("values[0]", "Security", ("CriticalUpdates", "SecurityUpdates"))
