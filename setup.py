"""The wheel carries the repository's chips/, models/ and scenarios/ as ``neurosim/shipped/``, so
that an installed neurosim finds the shipped chips, models and scenarios by name
(`neurosim.spec.places`). Everything else about the package is in pyproject.toml."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = ("chips", "models", "scenarios")


class BuildWithShippedFiles(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):      # an editable install reads them from the checkout
            return
        target = Path(self.build_lib) / "neurosim" / "shipped"
        for name in SHIPPED:
            shutil.rmtree(target / name, ignore_errors=True)
            shutil.copytree(ROOT / name, target / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))


setup(cmdclass={"build_py": BuildWithShippedFiles})
