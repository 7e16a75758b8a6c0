"""YAML output shared by `indexforge render` and the generated CRD file."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    """Safe dumper writing multi-line strings (config files in ConfigMaps) as blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)


def dump(obj: Mapping[str, Any]) -> str:
    """One YAML document, keys in insertion order (builders order them like kubectl does)."""
    text: str = yaml.dump(obj, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)
    return text


def dump_stream(objs: Iterable[Mapping[str, Any]]) -> str:
    """A multi-document stream, each document starting with `---`."""
    return "".join(f"---\n{dump(obj)}" for obj in objs)
