# -*- coding: utf-8 -*-
# Copyright: Contributors to the fleetpatch.ssm project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Field checks shared by every fleetpatch.ssm module: run before any AWS write, fail naming the field.

Each check raises `ParameterError` with one message shape, so users read the same thing everywhere:

    approval_rules[0].approve_after_days: 400 is out of range; allowed: 0 to 360

`field_path("approval_rules", 0, "approve_after_days")` builds the field name. The limits come from botocore's
SSM model (the contract AWS enforces with ValidationException) or from the SSM user guide where the model is
silent; the callers say which.
"""

from __future__ import annotations

import datetime
import re
import unicodedata


class ParameterError(Exception):
    """A task asks for something AWS would reject (or the module refuses): nothing has been written."""


def field_path(*parts) -> str:
    """`field_path("rules", 0, "key")` -> "rules[0].key": the user's name of a (nested) option."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _allowed(values) -> str:
    return ", ".join(str(value) for value in values)


def reject(field: str, value, problem: str) -> None:
    """Raise the standard message: '<field>: <value> <problem>'."""
    raise ParameterError(f"{field}: {value!r} {problem}")


def check_range(field: str, value, low: int, high: int) -> None:
    if value is not None and not low <= value <= high:
        reject(field, value, f"is out of range; allowed: {low} to {high}")


def check_count(field: str, items, high: int, low: int = 0) -> None:
    """A list option holds between `low` and `high` entries (AWS counts entries, not distinct values)."""
    count = len(items or ())
    if count > high:
        raise ParameterError(f"{field}: {count} entries; allowed: at most {high}")
    if count < low:
        raise ParameterError(f"{field}: {count} entries; allowed: at least {low}")


def check_length(field: str, value, low: int, high: int) -> None:
    if value is not None and not low <= len(value) <= high:
        reject(field, value, f"has {len(value)} characters; allowed: {low} to {high}")


def check_pattern(field: str, value, pattern: str, meaning: str) -> None:
    """`pattern` is matched in full; `meaning` tells the user what it allows in words."""
    if value is not None and not re.fullmatch(pattern, value):
        reject(field, value, f"is not valid; allowed: {meaning}")


def spelling(value: str, choices):
    """The choice that is `value` without regard to case, or None."""
    return next((choice for choice in choices or () if choice.lower() == value.lower()), None)


def canonical_choice(field: str, value: str, allowed) -> str:
    """Return the allowed spelling of `value`, matched without regard to case; reject anything else.

    Used where AWS documents a fixed vocabulary (e.g. CLASSIFICATION values): `security` and `Security` mean the
    same to the user, and sending the documented spelling keeps the stored state stable.
    """
    choice = spelling(value, allowed)
    if choice is None:
        reject(field, value, f"is not valid; allowed: {_allowed(allowed)}")
    return choice


def check_date(field: str, value) -> None:
    """A calendar date written YYYY-MM-DD (the model's PatchStringDateTime, e.g. ApproveUntilDate)."""
    if value is None:
        return
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError(value)
        datetime.date.fromisoformat(value)
    except ValueError:
        reject(field, value, "is not a date; allowed: YYYY-MM-DD, e.g. 2026-12-31")


# The model's pattern for patch groups and tag keys/values, ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$: Unicode letters,
# separators and numbers, plus these symbols. Python's re has no \p{..}, so the categories are checked directly.
_TAG_SYMBOLS = set("_.:/=+-@")
_TAG_CATEGORIES = ("L", "Z", "N")


def check_tag_characters(field: str, value: str) -> None:
    for char in value:
        if char not in _TAG_SYMBOLS and not unicodedata.category(char).startswith(_TAG_CATEGORIES):
            reject(field, value, f"contains {char!r}; allowed: letters, digits, spaces and _ . : / = + - @")


def check_unique(field: str, values) -> None:
    """Reject a value given twice where AWS would store it twice or treat it ambiguously."""
    seen = set()
    for value in values:
        if value in seen:
            reject(field, value, "is given more than once")
        seen.add(value)
