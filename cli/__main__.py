"""`python -m shuxin.cli` runs the `shuxin` command."""

import sys

from shuxin.cli.main import main

sys.exit(main())
