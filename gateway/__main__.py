"""`python -m shuxin.gateway` is `shuxin gateway`."""

import sys

from shuxin.cli.main import component_main

sys.exit(component_main("gateway"))
