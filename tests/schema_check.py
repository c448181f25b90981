"""A structural check of JSON Schema documents (draft 2020-12), for the registries' parameter schemas.

No validator library is a dependency, so this checks what a validator's `check_schema` would
for the keywords pydantic emits: known keywords only, well-typed keyword values, `required`
naming real properties, `$ref`s that resolve, and every `default` valid under its own schema.
"""

from __future__ import annotations

import json
import math
from typing import Any

KEYWORDS = frozenset(
    [
        "$schema",
        "$id",
        "$ref",
        "$defs",
        "$comment",
        "$anchor",
        "$dynamicRef",
        "$dynamicAnchor",
        "$vocabulary",
        "type",
        "enum",
        "const",
        "properties",
        "additionalProperties",
        "required",
        "items",
        "prefixItems",
        "anyOf",
        "allOf",
        "oneOf",
        "not",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minLength",
        "maxLength",
        "pattern",
        "format",
        "minItems",
        "maxItems",
        "uniqueItems",
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "patternProperties",
        "propertyNames",
        "minProperties",
        "maxProperties",
        "dependentRequired",
        "dependentSchemas",
        "if",
        "then",
        "else",
        "contains",
        "minContains",
        "maxContains",
        "unevaluatedItems",
        "unevaluatedProperties",
        "contentEncoding",
        "contentMediaType",
        "contentSchema",
    ]
)
TYPES = frozenset({"null", "boolean", "object", "array", "number", "string", "integer"})
NUMERIC = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
COUNTS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _type_ok(value: Any, name: str) -> bool:
    return {
        "null": value is None,
        "boolean": isinstance(value, bool),
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "number": _is_number(value),
        "integer": _is_number(value) and float(value).is_integer(),
        "string": isinstance(value, str),
    }[name]


def instance_errors(value: Any, schema: dict[str, Any], root: dict[str, Any]) -> list[str]:
    """Why `value` fails `schema` (the keywords used for parameters), or [] where it passes."""
    if "$ref" in schema:
        return instance_errors(value, _resolve(schema["$ref"], root), root)
    errors = []
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else types
        if not any(_type_ok(value, t) for t in names):
            errors.append(f"{value!r} is not of type {types}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{value!r} not in {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{value!r} != {schema['const']!r}")
    if _is_number(value):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{value!r} < minimum")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{value!r} > maximum")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            errors.append(f"{value!r} <= exclusiveMinimum")
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            errors.append(f"{value!r} >= exclusiveMaximum")
    if "anyOf" in schema and all(instance_errors(value, s, root) for s in schema["anyOf"]):
        errors.append(f"{value!r} matches no anyOf branch")
    return errors


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    assert ref.startswith("#/"), f"non-local $ref {ref!r}"
    node: Any = root
    for part in ref[2:].split("/"):
        assert isinstance(node, dict) and part in node, f"$ref {ref!r} does not resolve"
        node = node[part]
    assert isinstance(node, dict), f"$ref {ref!r} is not a schema"
    return node


def _check(schema: Any, root: dict[str, Any], path: str) -> None:
    assert isinstance(schema, dict | bool), f"{path}: a schema is an object or a boolean"
    if isinstance(schema, bool):
        return
    unknown = set(schema) - KEYWORDS
    assert not unknown, f"{path}: unknown keywords {sorted(unknown)}"
    if "type" in schema:
        t = schema["type"]
        names = [t] if isinstance(t, str) else t
        assert isinstance(names, list) and names and set(names) <= TYPES, f"{path}: type {t!r}"
    for key in NUMERIC:
        if key in schema:
            assert _is_number(schema[key]), f"{path}: {key} must be a number"
    if "multipleOf" in schema:
        assert schema["multipleOf"] > 0, f"{path}: multipleOf must be > 0"
    for key in COUNTS:
        if key in schema:
            v = schema[key]
            assert isinstance(v, int) and not isinstance(v, bool) and v >= 0, f"{path}: {key}"
    if "minimum" in schema and "maximum" in schema:
        assert schema["minimum"] <= schema["maximum"], f"{path}: minimum > maximum"
    if "enum" in schema:
        enum = schema["enum"]
        assert isinstance(enum, list) and enum, f"{path}: enum must be a non-empty array"
        assert len({json.dumps(v, sort_keys=True) for v in enum}) == len(enum), f"{path}: enum"
    for key in ("title", "description", "pattern", "format", "$ref", "$comment"):
        if key in schema:
            assert isinstance(schema[key], str), f"{path}: {key} must be a string"
    if "$ref" in schema:
        _resolve(schema["$ref"], root)
    props = schema.get("properties", {})
    assert isinstance(props, dict), f"{path}: properties must be an object"
    for name, sub in props.items():
        _check(sub, root, f"{path}.{name}")
    if "required" in schema:
        req = schema["required"]
        assert isinstance(req, list) and all(isinstance(r, str) for r in req), f"{path}: required"
        assert len(set(req)) == len(req) and set(req) <= set(props), f"{path}: required {req}"
    for key in ("additionalProperties", "items", "not", "propertyNames", "if", "then", "else"):
        if key in schema:
            _check(schema[key], root, f"{path}.{key}")
    for key in ("anyOf", "allOf", "oneOf", "prefixItems"):
        if key in schema:
            subs = schema[key]
            assert isinstance(subs, list) and subs, f"{path}: {key} must be a non-empty array"
            for i, sub in enumerate(subs):
                _check(sub, root, f"{path}.{key}[{i}]")
    for name, sub in schema.get("$defs", {}).items():
        _check(sub, root, f"{path}.$defs.{name}")
    if "default" in schema:
        errors = instance_errors(schema["default"], schema, root)
        assert not errors, f"{path}: default {schema['default']!r} is invalid: {errors}"


def assert_valid_json_schema(schema: Any, name: str = "schema") -> None:
    """Raise AssertionError naming the first structural problem of `schema`."""
    assert isinstance(schema, dict), f"{name}: the root must be an object"
    try:
        text = json.dumps(schema, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"{name}: not plain JSON ({exc})") from None
    assert json.loads(text) == schema, f"{name}: not plain JSON"
    _check(schema, schema, name)
