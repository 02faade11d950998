"""``python -m poems_mu.cli``: the ``poems-mu`` command."""

import sys

from . import main

sys.exit(main())
