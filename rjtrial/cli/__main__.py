"""``python -m rjtrial.cli``: the ``rjtrial`` command."""

import sys

from rjtrial.cli import main

sys.exit(main())
