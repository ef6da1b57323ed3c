"""Reading the edge's YAML configuration files (device profiles, protocols, station configs).

One strict loader for all of them: a safe YAML loader that also refuses a mapping key given
twice (YAML itself would silently keep the last one), and errors that name the file. Reading
and parsing only; the callers validate the mapping with their own models.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml


class UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that rejects a mapping key given twice."""


def _construct_unique_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} given twice", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def read_yaml_mapping(
    path: Path,
    make_error: Callable[[str, str], Exception],
    not_mapping: str = "(file): expected a YAML mapping",
) -> dict[str, Any]:
    """Read ``path`` as a YAML mapping; raise ``make_error(path, reason)`` otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise make_error(str(path), f"cannot read: {exc.strerror or exc}") from exc
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise make_error(str(path), f"not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise make_error(str(path), not_mapping)
    return data
