"""Parse Kubernetes quantities and Redis memory sizes (for alert thresholds and checks)."""

from __future__ import annotations

import re
from decimal import Decimal

_SUFFIX = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$")
# Redis reads "1gb" as 1024^3 and "1g" as 10^9; the spec only allows the *b forms.
_REDIS = {"kb": 2**10, "mb": 2**20, "gb": 2**30}


def parse_quantity(text: str) -> Decimal:
    """`"500m"` -> 0.5, `"768Mi"` -> 805306368."""
    match = _QUANTITY.match(text)
    if match is None:
        raise ValueError(f"not a quantity: {text!r}")
    return Decimal(match.group(1)) * _SUFFIX[match.group(2) or ""]


def parse_redis_memory(text: str) -> int:
    """`"512mb"` -> 536870912 bytes."""
    match = re.match(r"^([0-9]+)(kb|mb|gb)$", text)
    if match is None:
        raise ValueError(f"not a Redis memory size: {text!r}")
    return int(match.group(1)) * _REDIS[match.group(2)]
