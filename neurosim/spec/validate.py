"""Turn pydantic validation errors into one-line `UserError`s with file and line."""

from __future__ import annotations

import types
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from neurosim.errors import UserError
from neurosim.spec.yamlio import LineMap

M = TypeVar("M", bound=BaseModel)


class Spec(BaseModel):
    """Base of every spec: unknown keys are errors, values are immutable, and ``true`` or
    ``false`` is no number (pydantic would take them as 1 and 0: ``timesteps: true`` would run
    one step)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, value in data.items():
                field = cls.model_fields.get(name) if isinstance(name, str) else None
                number = _bool_for_number(field.annotation, value) if field is not None else None
                if number is not None:
                    raise PydanticCustomError("bool_for_number", "{field}: expected {expected}, found {found}",
                                              {"field": name, "expected": "an integer" if number == "int"
                                               else "a number", "found": repr(value)[:60]})
        return data


def _options(tp: Any) -> list[Any]:
    """The types a field's annotation admits, unions and ``Annotated`` unwrapped."""
    origin = get_origin(tp)
    if origin is Annotated:
        return _options(get_args(tp)[0])
    if origin is Union or origin is types.UnionType:
        return [o for arg in get_args(tp) for o in _options(arg)]
    return [tp]


def _bool_for_number(tp: Any, value: Any) -> str | None:
    """"int" or "float" when ``value`` (or an item of it) is a bool where ``tp`` admits that kind
    of number and no bool; else None."""
    options = _options(tp)
    if isinstance(value, bool):
        if any(o is bool or o is Any or o is object or (get_origin(o) is Literal and value in get_args(o))
               for o in options):
            return None
        return "int" if int in options else ("float" if float in options else None)
    if isinstance(value, (list, tuple, dict)):
        items = value.values() if isinstance(value, dict) else value
        for o in options:
            origin = get_origin(o)
            if origin in (list, tuple, set, frozenset) and not isinstance(value, dict) or \
                    origin is dict and isinstance(value, dict):
                args = [a for a in get_args(o) if a is not Ellipsis]
                element = Union[tuple(args[1:] if origin is dict else args)] if args else Any
                found = next((n for n in (_bool_for_number(element, v) for v in items) if n), None)
                if found:
                    return found
    return None


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
        if err["type"] == "bool_for_number":
            loc += (err["ctx"]["field"],)
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
        elif err["type"] == "bool_for_number":
            message = f"expected {err['ctx']['expected']}, found {err['ctx']['found']}"
        else:
            message = f"expected {_expected(err)}{_found(err)}"
        raise UserError(message, file=file, line=line, field=field) from None
