"""Algorithm versions carried by every signal-core result.

Bump the component's version whenever its numbers can change for the same input, so stored
summaries say which algorithm produced them. Pure constants; no I/O.
"""

from __future__ import annotations

from typing import Final

#: Version of the signal core as a whole, recorded with every stored summary.
SIGNAL_CORE_VERSION: Final = "1.0.0"


def algorithm_version(component: str) -> str:
    """Return the version tag for one algorithm, e.g. ``"hrv_time/1.0.0"``."""
    return f"{component}/{SIGNAL_CORE_VERSION}"
