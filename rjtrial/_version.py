"""The package's version: one home, read by the build (``pyproject.toml``) and by the code.

A constant rather than ``importlib.metadata``, whose import cost every ``rjtrial`` command
a fiftieth of a second.
"""

__version__ = "0.2.0"
