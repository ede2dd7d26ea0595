"""YAML loading that remembers where each key came from.

`load_yaml` returns plain dicts and lists plus a `LineMap` from a key path
(a tuple such as ``("chip", "mesh", "routers_x")``) to its line in the file,
so validation errors can point at the line a user has to fix.

A file is refused with one `UserError` before it can cost much: larger than `MAX_YAML_BYTES`,
not UTF-8 text, nested deeper than `MAX_DEPTH`, or holding more than `MAX_VALUES` values once
its aliases (``*name`` of an ``&name`` anchor) are expanded: a few hundred bytes of aliases
would otherwise stand for billions of values. The file is composed into YAML's node graph
first (an alias is a reference there, not a copy), measured, and only then turned into data.
Keys are strings.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from neurosim.errors import UserError

KeyPath = tuple[Any, ...]

MAX_YAML_BYTES = 1 << 20        # 1 MiB: the largest chip file is 13 kB
MAX_DEPTH = 64                  # mappings and lists inside each other
MAX_VALUES = 200_000            # values (keys, scalars, mappings, lists) with every alias expanded


class LineMap(dict):
    """Key path -> 1-based line number; `find` falls back to the nearest parent."""

    def find(self, path: KeyPath) -> int | None:
        path = tuple(path)
        while path:
            if path in self:
                return self[path]
            path = path[:-1]
        return None


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing to compose nodes deeper than `MAX_DEPTH` (its composer
    recurses once per level)."""

    depth = 0

    def compose_node(self, parent, index):
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise UserError(f"nests mappings and lists more than {MAX_DEPTH} deep, expected a flatter file",
                                line=mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _measure(root: yaml.Node) -> None:
    """Refuse a node graph that refers to itself, or whose expansion (every alias a copy) has more
    than `MAX_VALUES` values or nests deeper than `MAX_DEPTH`; counted node by node, without
    expanding anything."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, closing = stack.pop()
        key = id(node)
        if closing:
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            open_nodes.discard(key)
            line = node.start_mark.line + 1
            if size[key] > MAX_VALUES:
                raise UserError(f"stands for more than {MAX_VALUES:,} values once its aliases are expanded, "
                                f"expected a smaller file", line=line)
            if depth[key] > MAX_DEPTH:
                raise UserError(f"nests mappings and lists more than {MAX_DEPTH} deep once its aliases are "
                                f"expanded, expected a flatter file", line=line)
            continue
        if key in size:
            continue
        if key in open_nodes:
            raise UserError("holds an alias to a mapping or list that contains it, expected no recursive aliases",
                            line=node.start_mark.line + 1)
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((k, False) for k in reversed(_children(node)) if id(k) not in size)


def _construct(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    try:
        return loader.construct_object(node, deep=True)
    except (ValueError, OverflowError) as err:            # e.g. an integer of more digits than Python converts
        raise UserError(f"holds a value that cannot be read ({str(err).split(';')[0]})",
                        line=node.start_mark.line + 1) from None


def _to_python(node: yaml.Node, path: KeyPath, lines: LineMap, loader: yaml.SafeLoader) -> Any:
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            key = _construct(loader, key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                found = repr(key_node.value)[:40] if isinstance(key_node, yaml.ScalarNode) else "a mapping or list"
                raise UserError(f"key {found} is not a string, expected a name (quote it if it is one)",
                                line=line, field=".".join(map(str, path)) or None)
            if key in out:
                raise UserError(f"duplicate key {key!r}", line=line, field=".".join(map(str, path + (key,))))
            lines[path + (key,)] = line
            out[key] = _to_python(value_node, path + (key,), lines, loader)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            lines[path + (i,)] = item.start_mark.line + 1
            items.append(_to_python(item, path + (i,), lines, loader))
        return items
    return _construct(loader, node)


def parse_yaml(text: str, file: str = "<text>") -> tuple[Any, LineMap]:
    """Parse YAML text into Python data and a map of key paths to lines."""
    lines = LineMap()
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                _measure(node)
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


def read_text(path: Path, what: str = "a YAML file", limit: int = MAX_YAML_BYTES) -> str:
    """A text file's contents, or a `UserError` saying why not: missing, unreadable, not a
    regular file, larger than ``limit`` bytes, or not UTF-8."""
    file = str(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise UserError("file not found", file=file) from None
    except OSError as err:
        raise UserError(f"cannot be read ({err.strerror or err}), expected {what}", file=file) from None
    if stat.S_ISDIR(info.st_mode):
        raise UserError(f"is a directory, expected {what}", file=file)
    if not stat.S_ISREG(info.st_mode):
        raise UserError(f"is not a regular file, expected {what}", file=file)
    if info.st_size > limit:
        raise UserError(f"is {info.st_size:,} bytes, expected {what} of at most {limit:,}", file=file)
    try:
        with open(path, "rb") as fh:
            raw = fh.read(limit + 1)
    except OSError as err:
        raise UserError(f"cannot be read ({err.strerror or err}), expected {what}", file=file) from None
    if len(raw) > limit:
        raise UserError(f"is more than {limit:,} bytes, expected {what} of at most {limit:,}", file=file)
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise UserError(f"is not UTF-8 text (it starts with UTF-16's byte-order mark), expected {what}", file=file)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise UserError(f"is not UTF-8 text (byte 0x{raw[err.start]:02x}), expected {what}", file=file,
                        line=line) from None
    if "\x00" in text:
        raise UserError(f"is not UTF-8 text (a NUL character: UTF-16 or binary data), expected {what}", file=file,
                        line=text[:text.index("\x00")].count("\n") + 1)
    return text


def load_yaml(path: str | Path) -> tuple[Any, LineMap, str]:
    """Read a YAML file; returns (data, line map, raw text)."""
    path = Path(path)
    text = read_text(path)
    data, lines = parse_yaml(text, str(path))
    return data, lines, text
