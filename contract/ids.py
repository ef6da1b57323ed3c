"""Identifier rules shared by topics and payloads: stations, devices, sessions, subjects.

Subjects are pseudonymous codes (``S-`` and 5–12 Crockford base-32 characters). The pattern is
deliberately narrow so that a real name, a national ID number or an employee number cannot pass
as a subject code: such values must never travel over MQTT or reach the time-series store.
Pure definitions and validators; no I/O.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

import numpy as np
from pydantic import AfterValidator, StringConstraints, WithJsonSchema

STATION_ID_PATTERN: Final = r"^[a-z0-9][a-z0-9-]{1,31}$"
DEVICE_ID_PATTERN: Final = r"^[a-z0-9][a-z0-9-]{0,47}$"
SESSION_ID_PATTERN: Final = r"^[a-z0-9][a-z0-9-]{7,63}$"

#: Crockford base-32 without I, L, O, U (no confusable letters, no accidental words).
CROCKFORD_ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
SUBJECT_CODE_PATTERN: Final = r"^S-[0-9A-HJKMNP-TV-Z]{5,12}$"

_SUBJECT_RE: Final = re.compile(SUBJECT_CODE_PATTERN)
# Six or more digits in a row look like an employee, phone or ID number.
_LONG_NUMBER_RE: Final = re.compile(r"\d{6,}")


def _check_subject_code(value: str) -> str:
    if not _SUBJECT_RE.fullmatch(value):
        raise ValueError(
            "subject must be a pseudonymous code like S-7F3K2 "
            "(names and ID numbers never travel over MQTT)"
        )
    if _LONG_NUMBER_RE.search(value):
        raise ValueError("subject code looks like an employee or ID number; use a random code")
    return value


def _check_free_text(value: str) -> str:
    if _LONG_NUMBER_RE.search(value):
        raise ValueError(
            "free text must not contain numbers of 6 or more digits (ID, employee or phone numbers)"
        )
    if any(ord(ch) < 0x20 and ch not in "\t\n" for ch in value):
        raise ValueError("free text must not contain control characters")
    return value


StationId = Annotated[str, StringConstraints(pattern=STATION_ID_PATTERN)]
DeviceId = Annotated[str, StringConstraints(pattern=DEVICE_ID_PATTERN)]
SessionId = Annotated[str, StringConstraints(pattern=SESSION_ID_PATTERN)]
SubjectCode = Annotated[
    str,
    AfterValidator(_check_subject_code),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": SUBJECT_CODE_PATTERN,
            "description": "pseudonymous subject code; never a name, ID or employee number",
        }
    ),
]
#: A short label (phase names, markers, scene ids): lowercase-ish tokens, no free text.
Label = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$")]
#: Bounded free text (staff notes) screened for long numbers and control characters.
FreeText = Annotated[str, StringConstraints(max_length=500), AfterValidator(_check_free_text)]


def is_subject_code(value: str) -> bool:
    """Return True when ``value`` is a valid pseudonymous subject code."""
    try:
        _check_subject_code(value)
    except ValueError:
        return False
    return True


def new_subject_code(rng: np.random.Generator, length: int = 6) -> str:
    """Draw a random pseudonymous subject code such as ``S-7F3KQ2``.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness (a ``secrets``-seeded generator in production).
    length : int
        Number of Crockford base-32 characters, 5–12.
    """
    if not 5 <= length <= 12:
        raise ValueError("subject code length must be 5-12")
    while True:
        body = "".join(CROCKFORD_ALPHABET[i] for i in rng.integers(0, 32, size=length))
        code = f"S-{body}"
        if is_subject_code(code):
            return code
