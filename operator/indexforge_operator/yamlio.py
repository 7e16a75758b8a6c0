"""YAML output: `indexforge render`, the generated CRD file and config files in ConfigMaps.

libyaml's emitter when PyYAML has it (it is bundled in PyYAML's wheels and is ~10x faster);
its output matches the pure-Python emitter for these documents.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml

_Base: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_Base):  # type: ignore[valid-type,misc]
    """Safe dumper writing multi-line strings (config files, PromQL) as literal blocks."""


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
