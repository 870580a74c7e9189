"""Partial responses: the standard ``fields`` query parameter.

Supports the documented syntax: comma-separated field names, ``a/b`` to select a sub-field and
``a(b,c)`` to select several sub-fields of ``a``; arrays apply the selection to each element.
"""

from __future__ import annotations

from typing import Any

Selection = dict[str, "Selection | None"]


def parse_fields(spec: str) -> Selection:
    pos = 0

    def parse_list(end: str | None) -> Selection:
        nonlocal pos
        out: Selection = {}
        while pos < len(spec):
            if end and spec[pos] == end:
                return out
            name, sub = parse_entry()
            _merge(out, name, sub)
            if pos < len(spec) and spec[pos] == ",":
                pos += 1
        if end:
            raise ValueError(spec)
        return out

    def parse_entry() -> tuple[str, Selection | None]:
        """``name``, ``name/entry`` or ``name(list)``."""
        nonlocal pos
        begin = pos
        while pos < len(spec) and spec[pos] not in ",()/":
            pos += 1
        name = spec[begin:pos].strip()
        if not name:
            raise ValueError(spec)
        sub: Selection | None = None
        if pos < len(spec) and spec[pos] == "/":
            pos += 1
            inner, inner_sub = parse_entry()
            sub = {inner: inner_sub}
        elif pos < len(spec) and spec[pos] == "(":
            pos += 1
            sub = parse_list(")")
            pos += 1  # past the ")" the list stopped at
        return name, sub

    return parse_list(None)


def _merge(out: Selection, name: str, sub: Selection | None) -> None:
    if name in out and out[name] is not None and sub is not None:
        existing = out[name]
        assert existing is not None
        for k, v in sub.items():
            _merge(existing, k, v)
    elif name in out and (out[name] is None or sub is None):
        out[name] = None
    else:
        out[name] = sub


def apply_fields(value: Any, selection: Selection | None) -> Any:
    if selection is None:
        return value
    if isinstance(value, list):
        return [apply_fields(v, selection) for v in value]
    if isinstance(value, dict):
        return {k: apply_fields(value[k], sub) for k, sub in selection.items() if k in value}
    return value
