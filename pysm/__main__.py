"""``python -m pysm ...``: see :mod:`pysm.cli`."""

import sys

from pysm.cli import main

sys.exit(main())
