"""YAML loading that remembers where each key came from.

`load_yaml` returns plain dicts and lists plus a `LineMap` from a key path
(a tuple such as ``("chip", "mesh", "routers_x")``) to its line in the file,
so validation errors can point at the line a user has to fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from neurosim.errors import UserError

KeyPath = tuple[Any, ...]


class LineMap(dict):
    """Key path -> 1-based line number; `find` falls back to the nearest parent."""

    def find(self, path: KeyPath) -> int | None:
        path = tuple(path)
        while path:
            if path in self:
                return self[path]
            path = path[:-1]
        return None


def _to_python(node: yaml.Node, path: KeyPath, lines: LineMap, loader: yaml.SafeLoader) -> Any:
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if key in out:
                raise UserError(f"duplicate key {key!r}", line=key_node.start_mark.line + 1,
                                field=".".join(map(str, path + (key,))))
            lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _to_python(value_node, path + (key,), lines, loader)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            lines[path + (i,)] = item.start_mark.line + 1
            items.append(_to_python(item, path + (i,), lines, loader))
        return items
    return loader.construct_object(node, deep=True)


def parse_yaml(text: str, file: str = "<text>") -> tuple[Any, LineMap]:
    """Parse YAML text into Python data and a map of key paths to lines."""
    lines = LineMap()
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = None if node is None else _to_python(node, (), lines, loader)
        finally:
            loader.dispose()
    except UserError as err:
        err.file = file
        raise
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UserError(f"is not valid YAML ({problem})", file=file,
                        line=mark.line + 1 if mark else None) from None
    return data, lines


def load_yaml(path: str | Path) -> tuple[Any, LineMap, str]:
    """Read a YAML file; returns (data, line map, raw text)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError("file not found", file=str(path)) from None
    except IsADirectoryError:
        raise UserError("is a directory, expected a YAML file", file=str(path)) from None
    except UnicodeDecodeError:
        raise UserError("is not UTF-8 text, expected a YAML file", file=str(path)) from None
    data, lines = parse_yaml(text, str(path))
    return data, lines, text
