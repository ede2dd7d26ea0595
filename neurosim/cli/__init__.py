"""The `neurosim` command."""

from neurosim.cli.main import cli, main

__all__ = ["cli", "main"]
