"""Where a chip, a model, a scenario or an imported file named by the user is found.

A name or a relative path is looked for, in this order:

1. beside the scenario that names it, then in that scenario's parent folder (so that a scenario in
   ``scenarios/`` finds ``chips/`` and ``models/`` next to its folder);
2. in the working directory;
3. among the files that ship with neurosim: the repository's ``chips/``, ``models/`` and
   ``scenarios/`` for a checkout, or their copies inside an installed wheel (``neurosim/shipped/``).

In each place a chip is ``NAME``, ``NAME.yaml``, ``chips/NAME`` or ``chips/NAME.yaml``; a model is a
folder holding ``model.yaml`` (``NAME`` or ``models/NAME``); a scenario is ``NAME``, ``NAME.yaml``,
``scenarios/NAME`` or ``scenarios/NAME.yaml``; an imported file (NIR, netx, inputs) is the path
itself. An absolute path is taken as it is. When a name is found in more than one place with
different contents, the first is used and a warning names the others.
"""

from __future__ import annotations

import logging
from pathlib import Path

from neurosim.errors import UserError

log = logging.getLogger("neurosim")

PACKAGE = Path(__file__).resolve().parents[1]
FOLDERS = {"chip": "chips", "model": "models", "scenario": "scenarios", "file": None}
EXPECTED = {"chip": "a chip YAML file or a name in chips/",
            "model": "a folder holding model.yaml or a name in models/",
            "scenario": "a scenario YAML file or a name in scenarios/",
            "file": "a file"}


def shipped_root() -> Path | None:
    """The folder holding the shipped ``chips/``, ``models/`` and ``scenarios/``: inside an installed
    wheel, or the checkout neurosim is imported from."""
    inside = PACKAGE / "shipped"
    if (inside / "chips").is_dir():
        return inside
    checkout = PACKAGE.parent
    if (checkout / "chips").is_dir() and (checkout / "pyproject.toml").is_file():
        return checkout
    return None


def search_places(beside: Path | None = None) -> list[Path]:
    """The folders a name is looked up in, in order (see the module's docstring)."""
    places = []
    if beside is not None:
        places += [beside, beside.parent]
    places.append(Path.cwd())
    shipped = shipped_root()
    if shipped is not None:
        places.append(shipped)
    return list(dict.fromkeys(p.resolve() for p in places))


def candidates(kind: str, name: str, place: Path) -> list[Path]:
    folder = FOLDERS[kind]
    names = [name] if kind in ("model", "file") else [name, f"{name}.yaml"]
    found = [place / n for n in names]
    if folder is not None:
        found += [place / folder / n for n in names]
    return found


def matches(kind: str, path: Path) -> bool:
    if kind == "model":
        return (path / "model.yaml").is_file()
    return path.is_file()


def _content(kind: str, path: Path) -> bytes:
    try:
        return ((path / "model.yaml") if kind == "model" else path).read_bytes()
    except OSError:
        return b""


def find(kind: str, name: str, beside: Path | None = None, *, file: str = "", field: str = "",
         line: int | None = None) -> Path:
    """The path of the ``kind`` (chip, model, scenario or file) called ``name``, looked up as the
    module's docstring says; a `UserError` at ``file``/``field`` when it is nowhere."""
    name = str(name)
    path = Path(name)
    if path.is_absolute():
        if matches(kind, path):
            return path
        raise UserError(f"file not found: {kind} {name!r}, expected {EXPECTED[kind]}", file=file, field=field,
                        line=line)
    places = search_places(beside)
    found = [c for place in places for c in candidates(kind, name, place) if matches(kind, c)]
    if not found:
        looked = ", ".join(str(p) for p in places)
        raise UserError(f"file not found: {kind} {name!r} (looked in {looked}), expected {EXPECTED[kind]}",
                        file=file, field=field, line=line)
    first = found[0]
    log.info("%s %r: %s", kind, name, first)
    others = list(dict.fromkeys(str(c.resolve()) for c in found[1:]
                                if c.resolve() != first.resolve() and _content(kind, c) != _content(kind, first)))
    if others:
        log.warning("%s %r found in several places with different contents: using %s (not %s)",
                    kind, name, first, ", ".join(others))
    return first


def shipped_folder(kind: str) -> Path | None:
    """The folder of the shipped chips, models or scenarios, for listing them."""
    root = shipped_root()
    return root / FOLDERS[kind] if root is not None else None
