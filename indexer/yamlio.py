"""YAML reading for the whole code base: safe, through libyaml when PyYAML was built with it (5-10x faster
than the pure-Python parser; the knowledge base and each index build read hundreds of files)."""

from __future__ import annotations

from typing import Any

import yaml

SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""The loader to subclass or pass to ``yaml.load`` (libyaml's when available)."""


def safe_load(text: str) -> Any:
    """``yaml.safe_load``, through libyaml when available."""
    return yaml.load(text, Loader=SafeLoader)  # noqa: S506 - a safe loader


def _timestamp_as_text(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(node.value)


class DatesAsTextLoader(SafeLoader):  # type: ignore[misc,valid-type]
    """Safe YAML whose dates stay text, so that a bad date is reported with its line, not raised (the
    knowledge base and the calculators read their files with it)."""


DatesAsTextLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)
