"""Request limits as pure checks: a list of texts in, the first violation (or None) out.

Limits come from settings at run time, so they are checked here rather than baked into the
pydantic schemas; the message names the offending item.
"""

from __future__ import annotations

from collections.abc import Sequence

from .model import normalize_text


def check_texts(
    texts: Sequence[str],
    *,
    max_chars: int,
    max_count: int,
    field: str = "texts",
    indexed: bool = True,
) -> str | None:
    if len(texts) > max_count:
        return f"{field}: {len(texts)} texts in one request; the limit is {max_count}"
    for index, text in enumerate(texts):
        where = f"{field}[{index}]" if indexed else field
        if len(text) > max_chars:
            return f"{where}: text has {len(text)} characters; the limit is {max_chars}"
        if not normalize_text(text):
            return f"{where}: text is empty or only whitespace"
    return None


def check_dimensions(requested: int | None, model_dim: int) -> str | None:
    if requested is not None and requested != model_dim:
        return f"config.dimensions={requested}: this model produces {model_dim} dimensions"
    return None


def check_pooling(strategy: str | None) -> str | None:
    if strategy in (None, "", "masked_mean", "mean"):
        return None
    return f"config.pooling_strategy={strategy!r}: only 'masked_mean' is served"


def check_pairs(pairs: Sequence[tuple[str, str]], *, max_chars: int, max_count: int) -> str | None:
    """Pairs cost two texts each, so at most max_count // 2 pairs per request."""
    max_pairs = max(1, max_count // 2)
    if len(pairs) > max_pairs:
        return f"pairs: {len(pairs)} pairs in one request; the limit is {max_pairs}"
    for index, (a, b) in enumerate(pairs):
        for side, text in (("a", a), ("b", b)):
            problem = check_texts(
                [text],
                max_chars=max_chars,
                max_count=1,
                field=f"pairs[{index}].{side}",
                indexed=False,
            )
            if problem:
                return problem
    return None
