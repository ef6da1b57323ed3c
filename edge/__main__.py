"""`python -m shuxin.edge` is `shuxin edge`."""

import sys

from shuxin.cli.main import component_main

sys.exit(component_main("edge"))
