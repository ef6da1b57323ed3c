"""`python -m shuxin.dashboard_api` is `shuxin api`."""

import sys

from shuxin.cli.main import component_main

sys.exit(component_main("api"))
