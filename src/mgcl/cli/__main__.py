"""``python -m mgcl.cli``: the same as the ``mgcl`` command."""

import sys

from mgcl.cli import main

sys.exit(main())
