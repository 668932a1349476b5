"""botocore's SSM service model as the lab's contract (and another service's model where the lab serves one of its
operations: `service=`, e.g. "resourcegroupstaggingapi").

* Input: AWS validates every request against the model's constraints (length, range, pattern, enum) and
  answers `ValidationException` with "N validation error(s) detected: Value ... at '<path>' failed to satisfy
  constraint: ...". botocore only checks types, required members and minimums client-side, so the lab checks
  the rest like the service does.
* Output: every response a handler builds is checked strictly against the operation's output shape (unknown
  members, types, enums) before moto serializes it. moto's serializer silently drops unknown members, which
  would hide a handler bug; the lab raises instead and counts each operation it has validated.
"""
from __future__ import annotations

import datetime
import threading
from functools import lru_cache

import botocore.session
import regex  # botocore patterns use \p{L}-style classes, which the stdlib re does not know

from .errors import ValidationException


@lru_cache(maxsize=None)
def service_model(service: str = "ssm"):
    return botocore.session.get_session().get_service_model(service)


def operation_model(name: str, service: str = "ssm"):
    return service_model(service).operation_model(name)


def operation_names() -> list[str]:
    return list(service_model().operation_names)


@lru_cache(maxsize=512)
def _pattern(pattern: str):
    return regex.compile(pattern)


def _lower_camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _show(value) -> str:
    return str(value)


class _InputChecker:
    """Collects AWS-style constraint violations for one request."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, value, path: str, constraint: str) -> None:
        self.errors.append(f"Value '{_show(value)}' at '{path}' failed to satisfy constraint: {constraint}")

    def check(self, shape, value, path: str) -> None:
        if value is None:
            return
        kind = shape.type_name
        meta = shape.metadata
        if kind == "structure":
            if not isinstance(value, dict):
                return
            for member_name, member_shape in shape.members.items():
                if member_name in value:
                    sub = f"{path}.{_lower_camel(member_name)}" if path else _lower_camel(member_name)
                    self.check(member_shape, value[member_name], sub)
        elif kind == "list":
            if not isinstance(value, list):
                return
            if "max" in meta and len(value) > meta["max"]:
                self.fail(value, path, f"Member must have length less than or equal to {meta['max']}")
            if "min" in meta and len(value) < meta["min"]:
                self.fail(value, path, f"Member must have length greater than or equal to {meta['min']}")
            for index, item in enumerate(value, start=1):
                self.check(shape.member, item, f"{path}.{index}.member")
        elif kind == "map":
            if not isinstance(value, dict):
                return
            if "max" in meta and len(value) > meta["max"]:
                self.fail(value, path, f"Map must have length less than or equal to {meta['max']}")
            if "min" in meta and len(value) < meta["min"]:
                self.fail(value, path, f"Map must have length greater than or equal to {meta['min']}")
            for key, item in value.items():
                self.check(shape.key, key, f"{path}.key")
                self.check(shape.value, item, f"{path}.{key}.member")
        elif kind == "string":
            if not isinstance(value, str):
                return
            if "max" in meta and len(value) > meta["max"]:
                self.fail(value, path, f"Member must have length less than or equal to {meta['max']}")
            if "min" in meta and len(value) < meta["min"]:
                self.fail(value, path, f"Member must have length greater than or equal to {meta['min']}")
            if "pattern" in meta and not _pattern(meta["pattern"]).search(value):
                self.fail(value, path, f"Member must satisfy regular expression pattern: {meta['pattern']}")
            if shape.enum and value not in shape.enum:
                self.fail(value, path, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
        elif kind in ("integer", "long"):
            if isinstance(value, bool) or not isinstance(value, int):
                return
            if "max" in meta and value > meta["max"]:
                self.fail(value, path, f"Member must have value less than or equal to {meta['max']}")
            if "min" in meta and value < meta["min"]:
                self.fail(value, path, f"Member must have value greater than or equal to {meta['min']}")


def validate_input(operation: str, params: dict, service: str = "ssm", error: type = ValidationException) -> None:
    """Raise ValidationException (or the service's documented `error`) the way AWS does for a request that breaks
    the model's constraints."""
    shape = operation_model(operation, service).input_shape
    if shape is None:
        return
    checker = _InputChecker()
    checker.check(shape, params, "")
    if checker.errors:
        count = len(checker.errors)
        noun = "error" if count == 1 else "errors"
        raise error(f"{count} validation {noun} detected: " + "; ".join(checker.errors))


class OutputMismatch(AssertionError):
    """A handler built a response that botocore's output shape does not allow (a lab bug, never a user error)."""


def _check_output(shape, value, path: str, problems: list[str]) -> None:
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected structure, got {type(value).__name__}")
            return
        for key, item in value.items():
            if key not in shape.members:
                problems.append(f"{path}.{key}: not a member of {shape.name}")
                continue
            if item is not None:
                _check_output(shape.members[key], item, f"{path}.{key}", problems)
    elif kind == "list":
        if not isinstance(value, list):
            problems.append(f"{path}: expected list, got {type(value).__name__}")
            return
        for index, item in enumerate(value):
            _check_output(shape.member, item, f"{path}[{index}]", problems)
    elif kind == "map":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected map, got {type(value).__name__}")
            return
        for key, item in value.items():
            _check_output(shape.key, key, f"{path}<key>", problems)
            _check_output(shape.value, item, f"{path}[{key}]", problems)
    elif kind == "string":
        if not isinstance(value, str):
            problems.append(f"{path}: expected string, got {type(value).__name__}")
        elif shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} not in enum {shape.name}")
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{path}: expected integer, got {type(value).__name__}")
    elif kind in ("double", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{path}: expected number, got {type(value).__name__}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{path}: expected boolean, got {type(value).__name__}")
    elif kind == "timestamp":
        if not isinstance(value, datetime.datetime):
            problems.append(f"{path}: expected datetime, got {type(value).__name__}")
    elif kind == "blob":
        if not isinstance(value, (bytes, str)):
            problems.append(f"{path}: expected blob, got {type(value).__name__}")


class OutputValidator:
    """Checks every response against its output shape and keeps a count per operation (for the self-test)."""

    def __init__(self) -> None:
        self.validated: dict[str, int] = {}
        self._lock = threading.Lock()

    def check(self, operation: str, result: dict, service: str = "ssm") -> None:
        shape = operation_model(operation, service).output_shape
        problems: list[str] = []
        if shape is None:
            if result:
                problems.append(f"{operation} has no output shape but the handler returned {sorted(result)}")
        else:
            _check_output(shape, result, operation, problems)
        if problems:
            raise OutputMismatch("; ".join(problems))
        with self._lock:
            self.validated[operation] = self.validated.get(operation, 0) + 1
