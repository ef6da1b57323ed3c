"""JSON Schema export of the v1 contract, for integrators and for the docs/contract/ folder.

``schemas()`` builds one schema per payload kind from the pydantic models; the files in
docs/contract/ are generated from it (``shuxin contract export-schema``) and a test fails when
they are stale. Reads and writes only the folder it is given.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, TypeAdapter

from shuxin.contract import messages
from shuxin.contract.messages import SCHEMA_VERSION
from shuxin.contract.topics import PREFIX

_MODELS: Final[dict[str, type[BaseModel]]] = {
    "station-status": messages.StationStatus,
    "device-status": messages.DeviceStatus,
    "lifecycle": messages.LifecycleMessage,
    "rr": messages.RrMessage,
    "hr": messages.HrMessage,
    "eda": messages.EdaMessage,
    "ecg": messages.EcgMessage,
    "ppg": messages.PpgMessage,
    "metrics": messages.MetricsMessage,
    "events": messages.EventsMessage,
}

_TOPICS: Final[dict[str, str]] = {
    "station-status": f"{PREFIX}/<station>/status",
    "device-status": f"{PREFIX}/<station>/devices/<device>/status",
    **{
        name: f"{PREFIX}/<station>/sessions/<session>/{name}"
        for name in ("lifecycle", "rr", "hr", "eda", "ecg", "ppg", "metrics", "events")
    },
}


def schemas() -> dict[str, dict[str, Any]]:
    """Return ``{file name: JSON Schema}`` for every payload kind and the session union."""
    out: dict[str, dict[str, Any]] = {}
    for name, model in _MODELS.items():
        schema = model.model_json_schema(by_alias=True, mode="validation")
        schema["$id"] = f"shuxin:contract:v{SCHEMA_VERSION}:{name}"
        schema["x-topic"] = _TOPICS[name]
        out[f"{name}.schema.json"] = schema
    union = TypeAdapter(messages.SessionMessage).json_schema(by_alias=True, mode="validation")
    union["$id"] = f"shuxin:contract:v{SCHEMA_VERSION}:session-message"
    union["title"] = "SessionMessage"
    union["x-topic"] = f"{PREFIX}/<station>/sessions/<session>/<stream>"
    out["session-message.schema.json"] = union
    return out


def _render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write_schema_dir(folder: Path) -> list[Path]:
    """Write every schema file into ``folder`` (created if missing); return the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in schemas().items():
        path = folder / name
        path.write_text(_render(schema), encoding="utf-8")
        written.append(path)
    return written


def diff_schema_dir(folder: Path) -> list[str]:
    """Return the names of schema files in ``folder`` that are missing, stale or unexpected."""
    expected = {name: _render(schema) for name, schema in schemas().items()}
    stale = [
        name
        for name, text in expected.items()
        if not (folder / name).is_file() or (folder / name).read_text(encoding="utf-8") != text
    ]
    if folder.is_dir():
        stale += sorted(p.name for p in folder.glob("*.schema.json") if p.name not in expected)
    return stale
