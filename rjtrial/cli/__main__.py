"""``python -m rjtrial.cli``: the ``rjtrial`` command."""

import sys

from rjtrial.cli import console

sys.exit(console())
