"""The one exception type for mistakes a user can fix.

A `UserError` carries the file, the line where known, the field, what was
found and what was expected. The CLI prints it as one line and exits with
status 2; no traceback is shown for it.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in a user's file or command line, reported as one sentence."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None):
        self.file = file
        self.line = line
        self.field = field
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        what = f"{self.field}: " if self.field else ""
        return f"{where}{what}{self.message}"


class Interrupted(Exception):
    """A run stopped by the user (SIGINT), saying where it was; nothing was written. (Not a
    `KeyboardInterrupt`: the CLI's framework would turn that into a bare "aborted".)"""

    def __init__(self, where: str):
        self.where = where
        super().__init__(where)
