"""``python -m neurosim``: the `neurosim` command."""

from neurosim.cli import main

main()
