"""Validate a request against botocore's own MTurk service model, as MTurk's front end does.

Checks required members, JSON types, enums, string length / pattern and numeric / list bounds where the
model gives them. Unknown members are ignored, as AWS JSON services do. Errors read like AWS's
"1 validation error detected: Value ... at '...' failed to satisfy constraint: ...".
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import botocore.session

from server.sandbox.errors import RequestError

SERVICE = "mturk"
TARGET_PREFIX = "MTurkRequesterServiceV20170117"


@functools.cache
def service_model() -> Any:
    return botocore.session.get_session().get_service_model(SERVICE)


def operation_names() -> frozenset[str]:
    return frozenset(service_model().operation_names)


def _show(value: Any) -> str:
    return "null" if value is None else f"'{json.dumps(value)[:80]}'"


def _bounds(shape: Any, size: float, what: str, at: str, value: Any, errors: list[str]) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and size < low:
        errors.append(
            f"Value {_show(value)} at '{at}' failed to satisfy constraint: Member must have {what} "
            f"greater than or equal to {low}"
        )
    if high is not None and size > high:
        errors.append(
            f"Value {_show(value)} at '{at}' failed to satisfy constraint: Member must have {what} "
            f"less than or equal to {high}"
        )


def _check(shape: Any, value: Any, at: str, errors: list[str]) -> None:
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            errors.append(f"Value {_show(value)} at '{at}' failed to satisfy constraint: Member must be an object")
            return
        for name in shape.required_members:
            if value.get(name) is None:
                errors.append(
                    f"Value null at '{_join(at, name)}' failed to satisfy constraint: Member must not be null"
                )
        for name, member in shape.members.items():
            if value.get(name) is not None:
                _check(member, value[name], _join(at, name), errors)
    elif kind == "list":
        if not isinstance(value, list):
            errors.append(f"Value {_show(value)} at '{at}' failed to satisfy constraint: Member must be a list")
            return
        _bounds(shape, len(value), "length", at, value, errors)
        for index, item in enumerate(value, start=1):
            _check(shape.member, item, f"{at}.{index}.member", errors)
    elif kind == "string":
        _check_string(shape, value, at, errors)
    elif kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append(f"Value {_show(value)} at '{at}' failed to satisfy constraint: Member must be an integer")
            return
        _bounds(shape, value, "value", at, value, errors)
    elif kind == "boolean" and not isinstance(value, bool):
        errors.append(f"Value {_show(value)} at '{at}' failed to satisfy constraint: Member must be a boolean")
    elif kind == "timestamp" and (not isinstance(value, int | float) or isinstance(value, bool)):
        errors.append(
            f"Value {_show(value)} at '{at}' failed to satisfy constraint: Member must be a timestamp in epoch seconds"
        )


def _check_string(shape: Any, value: Any, at: str, errors: list[str]) -> None:
    if not isinstance(value, str):
        errors.append(f"Value {_show(value)} at '{at}' failed to satisfy constraint: Member must be a string")
        return
    enum = shape.enum
    if enum and value not in enum:
        errors.append(
            f"Value {_show(value)} at '{at}' failed to satisfy constraint: "
            f"Member must satisfy enum value set: [{', '.join(enum)}]"
        )
    _bounds(shape, len(value), "length", at, value, errors)
    pattern = shape.metadata.get("pattern")
    if pattern and re.search(pattern, value) is None:
        errors.append(
            f"Value {_show(value)} at '{at}' failed to satisfy constraint: "
            f"Member must satisfy regular expression pattern: {pattern}"
        )


def _join(at: str, name: str) -> str:
    return f"{at}.{name}" if at else name


def validate_input(operation: str, params: Any) -> dict[str, Any]:
    """``params`` if they satisfy the operation's input shape, else a RequestError listing every problem."""
    shape = service_model().operation_model(operation).input_shape
    errors: list[str] = []
    if shape is None:
        return {}
    _check(shape, params, "", errors)
    if errors:
        count = len(errors)
        noun = "error" if count == 1 else "errors"
        raise RequestError(f"{count} validation {noun} detected: {'; '.join(errors)}", "ParameterValidationError")
    assert isinstance(params, dict)
    return params


def output_problems(operation: str, result: dict[str, Any]) -> list[str]:
    """Where ``result`` does not match the operation's output shape (a sandbox bug, not a client's)."""
    shape = service_model().operation_model(operation).output_shape
    errors: list[str] = []
    if shape is not None:
        _check(shape, result, "", errors)
    return errors
