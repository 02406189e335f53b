"""Checking a JSON value against a schema of the OpenAPI document (admin.openapi).

Only the JSON Schema keywords that document uses are understood: type, enum, minLength,
maxLength, pattern, minimum, maximum, items, maxItems, properties, required,
additionalProperties, propertyNames, minProperties, maxProperties, anyOf, not and $ref.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from idp.admin.openapi import DOCUMENT

TYPES: dict[str, str] = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "an array",
    "object": "an object",
    "null": "null",
}
# Field names are echoed in error descriptions only when they look like field names.
NAME_RE = re.compile(r"[A-Za-z0-9_.\[\]-]{1,60}")


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = DOCUMENT
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


@cache
def _compiled(pattern: str) -> tuple[re.Pattern[str], bool]:
    # Anchored patterns are matched whole: Python's `$` would also match before a final
    # newline, letting "name\n" through.
    if pattern.startswith("^") and pattern.endswith("$"):
        return re.compile(pattern[1:-1]), True
    return re.compile(pattern), False


def matches(pattern: str, value: str) -> bool:
    compiled, whole = _compiled(pattern)
    return bool(compiled.fullmatch(value) if whole else compiled.search(value))


def _is(kind: str, value: Any) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(
        value, {"string": str, "boolean": bool, "array": list, "object": dict}.get(kind, type(None))
    )


def named(where: str) -> str:
    return where if NAME_RE.fullmatch(where) else "A field"


def problem(schema: dict[str, Any], value: Any, where: str) -> str | None:
    """Why ``value`` does not fit ``schema`` (a sentence naming ``where``), or None."""
    schema = resolve(schema)
    if why := _problem(schema, value, where):
        return why
    if "not" in schema and problem(schema["not"], value, where) is None:
        return f"{named(where)} is not allowed."
    return None


def _problem(schema: dict[str, Any], value: Any, where: str) -> str | None:
    if "anyOf" in schema:
        found = [problem(s, value, where) for s in schema["anyOf"]]
        return None if None in found else found[0]
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is(k, value) for k in kinds):
            return f"{named(where)} must be {' or '.join(TYPES[k] for k in kinds)}."
    if "enum" in schema and value not in schema["enum"]:
        return f"{named(where)} must be one of {', '.join(map(str, schema['enum']))}."
    if isinstance(value, str):
        return _string(schema, value, where)
    if _is("number", value) and not (
        schema.get("minimum", value) <= value <= schema.get("maximum", value)
    ):
        return f"{named(where)} must be from {schema.get('minimum')} to {schema.get('maximum')}."
    if isinstance(value, list):
        return _array(schema, value, where)
    if isinstance(value, dict):
        return _object(schema, value, where)
    return None


def _string(schema: dict[str, Any], value: str, where: str) -> str | None:
    try:
        value.encode("utf-8")  # lone surrogates, from "\ud800" escapes, cannot be stored
    except UnicodeEncodeError:
        return f"{named(where)} is not valid Unicode."
    if len(value) < schema.get("minLength", 0):
        least = schema["minLength"]
        if least > 1:
            return f"{named(where)} must have at least {least} characters."
        return f"{named(where)} must not be empty."
    if len(value) > schema.get("maxLength", len(value)):
        return f"{named(where)} must have at most {schema['maxLength']} characters."
    # PostgreSQL refuses NUL in text whatever the field, so it is refused everywhere.
    if "\x00" in value or ("pattern" in schema and not matches(schema["pattern"], value)):
        return f"{named(where)} has characters or a form that are not allowed."
    return None


def _array(schema: dict[str, Any], value: list[Any], where: str) -> str | None:
    if len(value) > schema.get("maxItems", len(value)):
        return f"{named(where)} must have at most {schema['maxItems']} items."
    for i, item in enumerate(value):
        if "items" in schema and (why := problem(schema["items"], item, f"{where}[{i}]")):
            return why
    return None


def _object(schema: dict[str, Any], value: dict[str, Any], where: str) -> str | None:
    def at(key: str) -> str:
        return f"{where}.{key}" if where else key

    if len(value) < schema.get("minProperties", 0):
        return f"{named(where) if where else 'The body'} must have at least one field."
    if len(value) > schema.get("maxProperties", len(value)):
        return f"{named(where)} must have at most {schema['maxProperties']} fields."
    for key in schema.get("required", []):
        if key not in value:
            return f"{named(at(key))} is required."
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if "propertyNames" in schema and problem(schema["propertyNames"], key, "name"):
            return f"{named(at(key))} is not a valid name."
        if key in properties:
            sub = properties[key]
        elif extra is False:
            return f"{named(at(key))} is not a known field."
        elif isinstance(extra, dict):
            sub = extra
        else:
            continue
        if why := problem(sub, item, at(key)):
            return why
    return None
