"""``python -m graph serve`` is ``support-graph serve``."""

import sys

from graph.cli.commands import main

sys.exit(main())
