"""Turn pydantic validation errors into one-line `UserError`s with file and line."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from neurosim.errors import UserError
from neurosim.spec.yamlio import LineMap

M = TypeVar("M", bound=BaseModel)


class Spec(BaseModel):
    """Base of every spec: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _expected(err: dict[str, Any]) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    table = {
        "missing": "a value (the field is required)",
        "extra_forbidden": "no such field (check the spelling)",
        "int_type": "an integer",
        "int_parsing": "an integer",
        "int_from_float": "an integer",
        "float_type": "a number",
        "float_parsing": "a number",
        "bool_type": "true or false",
        "bool_parsing": "true or false",
        "string_type": "a string",
        "dict_type": "a mapping of keys to values",
        "model_type": "a mapping of keys to values",
        "list_type": "a list",
        "finite_number": "a finite number",
    }
    if kind in table:
        return table[kind]
    if kind == "greater_than_equal":
        return f"a number >= {ctx.get('ge')}"
    if kind == "greater_than":
        return f"a number > {ctx.get('gt')}"
    if kind == "less_than_equal":
        return f"a number <= {ctx.get('le')}"
    if kind == "less_than":
        return f"a number < {ctx.get('lt')}"
    if kind == "literal_error":
        return f"one of {ctx.get('expected')}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return err["msg"]


def _data_path(loc: tuple, data: Any) -> tuple:
    """The error's location as a path of keys in the data: pydantic puts a tagged union's
    tag into ``loc`` (``core_kinds.neurocore.neurocore.limits``); it is no key, so drop it."""
    path, node = [], data
    for i, p in enumerate(loc):
        if isinstance(node, dict) and p not in node and (i < len(loc) - 1 or node.get("kind") == p):
            continue
        path.append(p)
        node = node.get(p) if isinstance(node, dict) else (
            node[p] if isinstance(node, list) and isinstance(p, int) and 0 <= p < len(node) else None)
    return tuple(path)


def _found(err: dict[str, Any]) -> str:
    if err["type"] in ("missing", "extra_forbidden"):
        return ""
    value = err.get("input")
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f", found {text}"


def validate(model: type[M], data: Any, *, file: str, lines: LineMap | None = None,
             prefix: tuple = ()) -> M:
    """Validate `data` against `model`; the first problem becomes a `UserError`."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        loc = _data_path(loc, data)
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc += (str((err.get("ctx") or {}).get("discriminator", "")).strip("'"),)
        loc = prefix + loc
        field = ".".join(str(p) for p in loc) or "(top level)"
        line = lines.find(loc) if lines is not None else None
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        elif err["type"] == "missing":
            message = "missing, expected a value (the field is required)"
        elif err["type"] == "union_tag_invalid":
            ctx = err["ctx"]
            message = f"expected one of {ctx['expected_tags']}, found {ctx['tag']!r}"
        elif err["type"] == "union_tag_not_found":
            message = "missing, expected a value (the field is required)"
        elif err["type"] == "value_error":
            message = _expected(err).removeprefix("Value error, ")
        else:
            message = f"expected {_expected(err)}{_found(err)}"
        raise UserError(message, file=file, line=line, field=field) from None
