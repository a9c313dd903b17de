"""``python -m berth ...``: see ``berth.cli``."""

import sys

from berth.cli import main

sys.exit(main())
