"""The admin UI's *Add a calendar* form, built from the kind's REST API connection model.

Each registered kind that has an ``api_connection`` (a pydantic model in the kind's module, see
:mod:`calbridge.providers.registry`) gets a form with one input per field of that model, so the
UI takes exactly what ``POST /api/calendars`` takes and a new provider needs no template:

* the field's ``title`` is its label (else its description, else its name);
* ``SecretStr`` → a password input (never rendered back); ``bool`` → a checkbox; a ``Literal``
  → a select of its values; a ``dict`` → a JSON text area; anything else → a text input;
* required fields are marked ``required``; the rest may stay empty (= not given).

The posted values go back through the same model (:func:`connection_from_form`): what the API
would refuse, the form refuses, with the field's label in the message.
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import SecretStr, ValidationError

from calbridge.errors import ValidationFailed
from calbridge.providers.registry import ApiConnection, ProviderKind, known_kind


@dataclass(frozen=True)
class FormField:
    """One input of a kind's form."""

    name: str
    label: str
    input: str  # "text" | "password" | "checkbox" | "select" | "json"
    required: bool
    choices: tuple[str, ...] = ()

    @property
    def secret(self) -> bool:
        return self.input in ("password", "json")


def _plain(annotation: Any) -> Any:
    """The annotation without ``| None``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _input(annotation: Any) -> tuple[str, tuple[str, ...]]:
    plain = _plain(annotation)
    if plain is SecretStr:
        return "password", ()
    if plain is bool:
        return "checkbox", ()
    if typing.get_origin(plain) is Literal:
        return "select", tuple(str(v) for v in typing.get_args(plain))
    if plain is dict or typing.get_origin(plain) is dict:
        return "json", ()
    return "text", ()


def form_fields(model: type[ApiConnection]) -> list[FormField]:
    """The inputs of ``model``'s form, in the model's field order (its ``kind`` is implied)."""
    fields = []
    for name, info in model.model_fields.items():
        if name == "kind":
            continue
        kind, choices = _input(info.annotation)
        label = info.title or info.description or name.replace("_", " ").capitalize()
        required = info.is_required() and kind != "checkbox"
        fields.append(FormField(name, label, kind, required, choices))
    return fields


def form_kinds() -> list[ProviderKind[Any]]:
    """The kinds a calendar can be added as from the UI (those with an API connection model),
    in registry order."""
    from calbridge.providers.registry import KINDS, kind_of

    entries = [kind_of(name) for name in KINDS]
    return [entry for entry in entries if entry.api_connection is not None]


def connection_from_form(kind: str, values: dict[str, str]) -> ApiConnection:
    """The posted form as the kind's connection model; :class:`ValidationFailed` naming the
    field (by its label) when a value is missing or wrong."""
    entry = known_kind(kind)
    if entry is None or entry.api_connection is None:
        raise ValidationFailed(f"'{kind}' is not a kind of calendar this form can add")
    model = entry.api_connection
    fields = form_fields(model)
    data: dict[str, Any] = {"kind": kind}
    for field in fields:
        raw = (values.get(field.name) or "").strip()
        if field.input == "checkbox":
            data[field.name] = raw == "on"
        elif not raw:
            if field.required:
                raise ValidationFailed(f"{field.label} is required")
        elif field.input == "json":
            try:
                data[field.name] = json.loads(raw)
            except ValueError as exc:
                raise ValidationFailed(f"{field.label} is not JSON: {exc}") from exc
        else:
            data[field.name] = raw
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        labels = {field.name: field.label for field in fields}
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            label = labels.get(str(error["loc"][0]), where) if error["loc"] else ""
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{label}: {message}" if label else message)
        raise ValidationFailed("; ".join(problems)) from None
