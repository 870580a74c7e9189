"""Discovery-document schemas: validation of responses and pruning of request bodies.

The emulator's source of truth is the Calendar v3 discovery document shipped inside
``googleapiclient`` (``discovery_cache/documents/calendar.v3.json``).  This module

* :func:`validate` - checks a JSON value against a schema (types, ``$ref``, arrays,
  ``additionalProperties`` maps, ``date``/``date-time``/``int32``/``int64`` formats, enums) and
  reports every property the schema does not define, so the emulator cannot drift from the API;
* :func:`prune` - drops unknown properties from request bodies (Google ignores fields it does
  not know) and rejects wrongly-typed values with a 400.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import date, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INT64_RE = re.compile(r"^-?\d+$")


def discovery_path() -> Path:
    """Path of the Calendar v3 discovery document bundled with ``googleapiclient``."""
    base = resources.files("googleapiclient") / "discovery_cache" / "documents"
    return Path(str(base / "calendar.v3.json"))


@lru_cache(maxsize=1)
def _load() -> dict[str, Any]:
    with open(discovery_path(), encoding="utf-8") as fh:
        doc: dict[str, Any] = json.load(fh)
    return doc


def discovery_document(root_url: str | None = None) -> dict[str, Any]:
    """A copy of the discovery document, optionally re-rooted at ``root_url``.

    With ``rootUrl`` pointing at the emulator, ``build_from_document()`` targets the emulator
    for both normal calls and ``service.new_batch_http_request()`` (whose URI is computed from
    ``rootUrl`` + ``batchPath`` and ignores ``client_options.api_endpoint``).
    """
    doc = copy.deepcopy(_load())
    if root_url:
        root = root_url.rstrip("/") + "/"
        doc["rootUrl"] = root
        doc["baseUrl"] = root + doc["servicePath"]
        doc.pop("mtlsRootUrl", None)
    return doc


def schemas() -> dict[str, Any]:
    schemas_: dict[str, Any] = _load()["schemas"]
    return schemas_


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = schemas()[schema["$ref"]]
    return schema


def _check_format(value: str, fmt: str | None) -> bool:
    if fmt == "date-time":
        try:
            dt = datetime.fromisoformat(value.replace("z", "Z"))
        except ValueError:
            return False
        return "T" in value and dt.tzinfo is not None
    if fmt == "date":
        if not _DATE_RE.match(value):
            return False
        try:
            date.fromisoformat(value)
        except ValueError:
            return False
        return True
    if fmt in ("int64", "uint64"):
        return bool(_INT64_RE.match(value))
    return True


def validate(value: Any, schema: str | dict[str, Any], path: str = "$") -> list[str]:
    """Return a list of human-readable violations (empty when ``value`` conforms)."""
    sch = _resolve({"$ref": schema} if isinstance(schema, str) else schema)
    errors: list[str] = []
    typ = sch.get("type")
    if typ == "any" or (typ is None and "properties" not in sch):
        return errors
    if typ == "object" or "properties" in sch:
        if not isinstance(value, dict):
            return [f"{path}: expected object, got {type(value).__name__}"]
        props = sch.get("properties", {})
        extra = sch.get("additionalProperties")
        for key, item in value.items():
            if key in props:
                errors.extend(validate(item, props[key], f"{path}.{key}"))
            elif extra is not None:
                errors.extend(validate(item, extra, f"{path}[{key!r}]"))
            else:
                errors.append(f"{path}: property {key!r} is not defined by the schema")
        return errors
    if typ == "array":
        if not isinstance(value, list):
            return [f"{path}: expected array, got {type(value).__name__}"]
        for i, item in enumerate(value):
            errors.extend(validate(item, sch.get("items", {"type": "any"}), f"{path}[{i}]"))
        return errors
    if typ == "string":
        if not isinstance(value, str):
            return [f"{path}: expected string, got {type(value).__name__}"]
        if not _check_format(value, sch.get("format")):
            errors.append(f"{path}: {value!r} is not a valid {sch.get('format')}")
        if "enum" in sch and value not in sch["enum"]:
            errors.append(f"{path}: {value!r} not in enum {sch['enum']}")
        return errors
    if typ == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{path}: expected integer, got {type(value).__name__}"]
        if sch.get("format") == "int32" and not -(2**31) <= value < 2**31:
            errors.append(f"{path}: {value} out of int32 range")
        return errors
    if typ == "number":
        if not isinstance(value, int | float) or isinstance(value, bool):
            return [f"{path}: expected number, got {type(value).__name__}"]
        return errors
    if typ == "boolean":
        if not isinstance(value, bool):
            return [f"{path}: expected boolean, got {type(value).__name__}"]
        return errors
    return [f"{path}: unsupported schema type {typ!r}"]


class SchemaError(ValueError):
    """A request body value has the wrong JSON type."""


def prune(value: Any, schema: str | dict[str, Any], path: str = "") -> Any:
    """Copy ``value`` keeping only schema-defined properties; raise on type mismatch.

    ``null`` values are kept as-is (PATCH uses them to clear fields).
    """
    sch = _resolve({"$ref": schema} if isinstance(schema, str) else schema)
    typ = sch.get("type")
    if value is None or typ == "any":
        return value
    if typ == "object" or "properties" in sch:
        if not isinstance(value, dict):
            raise SchemaError(path or "body")
        props = sch.get("properties", {})
        extra = sch.get("additionalProperties")
        out = {}
        for key, item in value.items():
            if key in props:
                out[key] = prune(item, props[key], f"{path}.{key}" if path else key)
            elif extra is not None:
                out[key] = prune(item, extra, f"{path}.{key}" if path else key)
        return out
    if typ == "array":
        if not isinstance(value, list):
            raise SchemaError(path)
        return [prune(v, sch.get("items", {"type": "any"}), path) for v in value]
    if typ == "string":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise SchemaError(path)
        return str(value)
    if typ == "integer":
        if isinstance(value, str) and _INT64_RE.match(value):
            return int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise SchemaError(path)
        return value
    if typ == "boolean":
        if isinstance(value, str) and value in ("true", "false"):
            return value == "true"
        if not isinstance(value, bool):
            raise SchemaError(path)
        return value
    return value
