"""Request validation from the same JSON Schemas that the OpenAPI document publishes.

``validate(value, schema, field)`` checks a decoded JSON value against the subset of JSON Schema
the routes use (type, enum, string lengths and patterns, number bounds, object properties with
required and additionalProperties, arrays with items and sizes, ``oneOf`` with a
``discriminator`` property) and raises ``ValidationFailed``
naming the first bad field (``tle.line1``, ``sat[2]``). ``parse_query`` does the same for query
parameters (strings from the URL, converted by their schema; arrays are comma-separated, OpenAPI
``style: form, explode: false``); an unknown parameter is refused. ``read_json`` reads a body:
JSON only, within the size limit, no NaN or Infinity, no duplicate keys.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from multidict import MultiMapping

from .errors import BadRequest, UnsupportedMediaType, ValidationFailed

__all__ = ["Schema", "parse_datetime", "parse_param", "parse_query", "read_json", "validate"]

Schema = Mapping[str, Any]

_INTEGER_TEXT = re.compile(r"-?(0|[1-9][0-9]{0,18})")  # 19 digits: int64; the schema's bounds do the rest
_NUMBER_TEXT = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_TYPE_NAMES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}


_PATTERNS: dict[str, re.Pattern[str]] = {}  # the schemas' patterns, compiled once each


def _pattern(source: str) -> re.Pattern[str]:
    pattern = _PATTERNS.get(source)
    if pattern is None:
        pattern = _PATTERNS[source] = re.compile(source)
    return pattern


def _type_of(value: Any) -> str:
    return "null" if value is None else _TYPE_NAMES.get(type(value), type(value).__name__)


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return type(value) is int
    if name == "number":
        return type(value) is int or (type(value) is float and math.isfinite(value))
    if name == "null":
        return value is None
    return _type_of(value) == name


def validate(value: Any, schema: Schema, field: str) -> Any:
    """``value`` if it conforms to ``schema``; ValidationFailed naming the first bad field
    (``field`` is its name; the empty name, for a whole body, reads as ``body``)."""
    if "oneOf" in schema:
        return validate(value, _branch(value, schema, field), field)
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_is_type(value, name) for name in names):
            raise ValidationFailed(field or "body", f"expected {' or '.join(names)}, got {_type_of(value)}")
    if "enum" in schema and not any(value == c and type(value) is type(c) for c in schema["enum"]):
        choices = ", ".join(json.dumps(c) for c in schema["enum"])
        raise ValidationFailed(field or "body", f"must be one of {choices}")
    if type(value) is str:
        _check_string(value, schema, field)
    elif type(value) in (int, float):
        _check_number(value, schema, field)
    elif type(value) is dict:
        _check_object(value, schema, field)
    elif type(value) is list:
        if len(value) < schema.get("minItems", 0):
            raise ValidationFailed(field, f"expected at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise ValidationFailed(field, f"expected at most {schema['maxItems']} items")
        items = schema.get("items")
        if items is not None:
            for index, item in enumerate(value):
                validate(item, items, f"{field}[{index}]")
    return value


def _branch(value: Any, schema: Schema, field: str) -> Schema:
    """The ``oneOf`` branch ``value`` is meant for, by the ``discriminator`` property (each
    branch gives it an ``enum``): errors then name the real problem, not every branch's."""
    prop = schema["discriminator"]["propertyName"]
    prefix = f"{field}." if field else ""
    if type(value) is not dict:
        raise ValidationFailed(field or "body", f"expected object, got {_type_of(value)}")
    if prop not in value:
        raise ValidationFailed(prefix + prop, "is required")
    choices: list[Any] = []
    for branch in schema["oneOf"]:
        enum = branch["properties"][prop]["enum"]
        if any(value[prop] == c and type(value[prop]) is type(c) for c in enum):
            return dict(branch)
        choices += enum
    raise ValidationFailed(prefix + prop, f"must be one of {', '.join(json.dumps(c) for c in choices)}")


def _check_string(value: str, schema: Schema, field: str) -> None:
    if len(value) < schema.get("minLength", 0):
        raise ValidationFailed(field, f"expected at least {schema['minLength']} characters")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise ValidationFailed(field, f"expected at most {schema['maxLength']} characters")
    if "pattern" in schema and not _pattern(schema["pattern"]).search(value):
        raise ValidationFailed(field, f"does not match {schema['pattern']}")
    if schema.get("format") == "date-time":
        parse_datetime(value, field)


def _check_number(value: float, schema: Schema, field: str) -> None:
    if type(value) is int:
        number: float = value  # compared exactly: as a float, 2**63 - 1 would exceed itself
    else:
        number = float(value)
        if not math.isfinite(number):
            raise ValidationFailed(field, "number out of range")
    if "minimum" in schema and number < schema["minimum"]:
        raise ValidationFailed(field, f"must be >= {schema['minimum']}")
    if "maximum" in schema and number > schema["maximum"]:
        raise ValidationFailed(field, f"must be <= {schema['maximum']}")
    if "exclusiveMinimum" in schema and number <= schema["exclusiveMinimum"]:
        raise ValidationFailed(field, f"must be > {schema['exclusiveMinimum']}")
    if "exclusiveMaximum" in schema and number >= schema["exclusiveMaximum"]:
        raise ValidationFailed(field, f"must be < {schema['exclusiveMaximum']}")


def _check_object(value: dict[str, Any], schema: Schema, field: str) -> None:
    prefix = f"{field}." if field else ""
    properties: Mapping[str, Schema] = schema.get("properties", {})
    for name in schema.get("required", ()):
        if name not in value:
            raise ValidationFailed(prefix + name, "is required")
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in properties:
            validate(item, properties[name], prefix + name)
        elif extra is False:
            known = ", ".join(properties) or "none"
            raise ValidationFailed(prefix + name, f"unknown field (known: {known})")
        elif isinstance(extra, Mapping):
            validate(item, extra, prefix + name)


def parse_datetime(text: str, field: str) -> datetime:
    """An RFC 3339 date-time with ``Z`` or an offset (a naive time is refused), as UTC."""
    try:
        value = datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    except ValueError:
        raise ValidationFailed(field, f"{text[:40]!r} is not an RFC 3339 date-time (e.g. 2024-03-01T12:00:00Z)") from None
    if value.tzinfo is None:
        raise ValidationFailed(field, "needs a time zone (Z or an offset such as +01:00)")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValidationFailed(field, "date-time out of range") from None


def _from_text(text: str, schema: Schema, field: str) -> Any:
    """A query string value converted to the schema's type (then validated by it)."""
    kind = schema.get("type")
    if kind == "integer":
        if not _INTEGER_TEXT.fullmatch(text):
            raise ValidationFailed(field, f"expected an integer, got {text[:40]!r}")
        return int(text)
    if kind == "number":
        if not _NUMBER_TEXT.fullmatch(text):
            raise ValidationFailed(field, f"expected a number, got {text[:40]!r}")
        number = float(text)
        if not math.isfinite(number):
            raise ValidationFailed(field, "number out of range")
        return number
    if kind == "boolean":
        if text not in ("true", "false"):
            raise ValidationFailed(field, "expected true or false")
        return text == "true"
    if kind == "array":
        items = schema.get("items", {})
        parts = text.split(",") if text else []
        return [_from_text(part, items, f"{field}[{i}]") for i, part in enumerate(parts)]
    return text


def parse_param(text: str, schema: Schema, field: str) -> Any:
    """One parameter from the URL (a path segment), converted by its schema and validated."""
    return validate(_from_text(text, schema, field), schema, field)


def parse_query(
    query: MultiMapping[str], params: Mapping[str, Schema], required: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The query parameters by name, converted and validated; absent optional ones left out."""
    values: dict[str, Any] = {}
    for name in query:
        if name not in params:
            known = ", ".join(params) or "none"
            raise ValidationFailed(name, f"unknown query parameter (known: {known})")
    for name, schema in params.items():
        all_values = query.getall(name, [])
        if not all_values:
            if name in required:
                raise ValidationFailed(name, "is required")
            continue
        if len(all_values) > 1:
            raise ValidationFailed(name, "given more than once")
        values[name] = parse_param(all_values[0], schema, name)
    return values


async def read_json(request: web.Request, schema: Schema) -> Any:
    """The request body as JSON conforming to ``schema``."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType(f"send JSON with Content-Type: application/json (got {request.content_type or 'none'})")
    raw = await request.read()  # over the app's client_max_size: 413 (aiohttp raises it)
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8") from None
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"the body is not valid JSON: {str(exc)[:200]}") from None
    return validate(value, schema, "")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return result
