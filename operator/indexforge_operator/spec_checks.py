"""Syntax checks that admission runs as CEL, each mirrored by a Python function.

Every check is a pair with one message: the CEL rule the generated CRD carries (so a bad CR
fails at `kubectl apply`, before the operator builds an object Kong or the API server would
reject) and a Python function with the same verdict (so `indexforge render`, the operator and
the unit tests agree with the API server). `tests/admission_cases.py` runs one table of good
and bad values through both.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from .quantity import parse_quantity

# --- IP addresses and CIDRs ---------------------------------------------------------------
# The API server's isIP()/isCIDR() parse with Go's netip and also refuse zones ("fe80::1%eth0")
# and IPv4-mapped IPv6 ("::ffff:1.2.3.4"); leading zeros ("010.0.0.1", "/08") are errors too.

IP_OR_CIDR_RULE = "isIP(self) || isCIDR(self)"
IP_OR_CIDR_MESSAGE = (
    "must be an IP address or a CIDR, e.g. 192.168.1.1, 10.0.0.0/8 or 2001:db8::/32"
)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if "%" in text:
        return None
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return None
    return addr


def is_ip(text: str) -> bool:
    """CEL `isIP(text)`."""
    return _address(text) is not None


def is_cidr(text: str) -> bool:
    """CEL `isCIDR(text)`: address/bits; host bits may be set (as in Go's netip.ParsePrefix)."""
    address, slash, bits = text.partition("/")
    if not slash or not (bits.isascii() and bits.isdigit()) or bits != str(int(bits)):
        return False
    addr = _address(address)
    return addr is not None and int(bits) <= addr.max_prefixlen


def check_ip_or_cidr(text: str) -> str:
    if not (is_ip(text) or is_cidr(text)):
        raise ValueError(IP_OR_CIDR_MESSAGE)
    return text


# --- Qualified names (label keys, node-selector keys, resource names, toleration keys) ----
# Kubernetes' IsQualifiedName: an optional DNS-subdomain prefix (at most 253 characters) and
# '/', then a name of at most 63 characters. The regex bounds the name; CEL and Python check
# the prefix length (the position of the only '/').

# `[.]`, not an escaped dot: the pattern is embedded in a CEL string literal, where `\.` is an
# invalid escape, and in Helm template strings.
_DNS_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
QUALIFIED_NAME_PATTERN = rf"^({_DNS_SUBDOMAIN}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{{0,61}}[A-Za-z0-9])?$"
QUALIFIED_NAME_MAX = 253 + 1 + 63
QUALIFIED_NAME_MESSAGE = (
    "must be a qualified name: an optional DNS subdomain prefix of at most 253 characters and "
    "'/', then at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter "
    "or digit (e.g. app.kubernetes.io/name)"
)


def qualified_name_rule(var: str) -> str:
    """CEL over the string `var` (`self` for a field, the loop variable for map keys)."""
    return f"{var}.matches('{QUALIFIED_NAME_PATTERN}') && {var}.indexOf('/') <= 253"


def is_qualified_name(text: str) -> bool:
    return bool(re.fullmatch(QUALIFIED_NAME_PATTERN, text)) and text.find("/") <= 253


def check_qualified_name(text: str) -> str:
    if not is_qualified_name(text):
        raise ValueError(QUALIFIED_NAME_MESSAGE)
    return text


# --- Requests never above limits -----------------------------------------------------------
# The API server refuses a Pod whose request exceeds its limit, so a CR like that would only
# fail later, at the Deployment's apply. Compared as quantities: "1" == "1000m", "1Gi" > "1G".


def _over(requests: str, limits: str) -> str:
    """CEL: the keys whose request exceeds the limit. The isQuantity guards leave malformed
    values to the pattern's error instead of failing the rule."""
    return (
        f"{requests}.filter(k, k in {limits} && isQuantity({requests}[k])"
        f" && isQuantity({limits}[k])"
        f" && quantity({requests}[k]).compareTo(quantity({limits}[k])) > 0)"
    )


REQUESTS_WITHIN_LIMITS_RULE = (
    "!has(self.requests) || !has(self.limits)"
    f" || size({_over('self.requests', 'self.limits')}) == 0"
)
# Names the first offending resource (sorted, so the message is stable) with both values. Only
# one: join() over a computed list has no cost bound, and the API server refuses the rule.
REQUESTS_WITHIN_LIMITS_MESSAGE_EXPRESSION = (
    f"{_over('self.requests', 'self.limits')}.sort().map(k, 'resources.requests.' + k + ' ('"
    " + self.requests[k] + ') must be less than or equal to resources.limits.' + k + ' ('"
    " + self.limits[k] + ')')[0]"
)
REQUESTS_WITHIN_LIMITS_MESSAGE = "resources.requests must be less than or equal to resources.limits"


def requests_over_limits(requests: Mapping[str, str], limits: Mapping[str, str]) -> str | None:
    """The CRD's messageExpression (the first offending resource), or None when all fit."""
    over = sorted(
        k
        for k, value in requests.items()
        if k in limits and parse_quantity(value) > parse_quantity(limits[k])
    )
    if not over:
        return None
    k = over[0]
    return (
        f"resources.requests.{k} ({requests[k]}) must be less than or equal to "
        f"resources.limits.{k} ({limits[k]})"
    )
