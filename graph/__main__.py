"""``python -m graph serve`` is ``support-graph serve``."""

import sys

from graph.cli import main

sys.exit(main())
