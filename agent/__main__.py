"""`python -m agent` runs the same command line as the `agent` script."""

import sys

from agent.cli import main

sys.exit(main())
