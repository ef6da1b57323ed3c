"""`python -m shuxin.signal` is `shuxin analyze` (the signal core itself does no I/O)."""

import sys

from shuxin.cli.main import component_main

sys.exit(component_main("analyze"))
