"""Build hook: a wheel carries the ``synthetic/`` folder (scenarios, example protocols, unit
costs, input examples) inside the package, as ``rjtrial/_data/synthetic``, so that ``rjtrial
demo``, ``rjtrial scenarios`` and the examples work from an installed wheel. The readable
source stays the repository's ``synthetic/`` (see ``rjtrial.scenarios``). Everything else
is in ``pyproject.toml``."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithScenarios(build_py):
    def run(self):
        super().run()
        source = Path(__file__).resolve().parent / "synthetic"
        if source.is_dir():
            target = Path(self.build_lib) / "rjtrial" / "_data" / "synthetic"
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildWithScenarios})
