"""Text split into chunks for embedding: at paragraph, then sentence boundaries.

Works on text arriving in blocks (a file read from disk), so a 50 MB document is never one
string: complete paragraphs are chunked as soon as their end is seen, and a paragraph that
grows past `PARAGRAPH_MAX_CHARS` without ending (a log file with no blank line) is cut at a
space there. That bound also keeps each regex call short, since `re` holds the GIL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

PARAGRAPHS = re.compile(r"\n\s*\n")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
PARAGRAPH_MAX_CHARS = 256 * 1024


def chunk_paragraph(paragraph: str, *, size: int) -> Iterator[str]:
    """Pieces of at most `size` chars, whitespace collapsed, cut between sentences if possible."""
    paragraph = " ".join(paragraph.split())
    if not paragraph:
        return
    current = ""
    for sentence in SENTENCE_END.split(paragraph):
        while len(sentence) > size:  # one very long sentence: hard cut
            if current:
                yield current
                current = ""
            yield sentence[:size]
            sentence = sentence[size:]
        if current and len(current) + 1 + len(sentence) > size:
            yield current
            current = sentence
        else:
            current = f"{current} {sentence}" if current else sentence
    if current:
        yield current


def _cut(text: str, limit: int) -> int:
    """Where to cut an over-long paragraph: the last whitespace before `limit`, else there."""
    space = max(text.rfind(" ", 0, limit), text.rfind("\n", 0, limit))
    return space + 1 if space > 0 else limit


def chunk_blocks(blocks: Iterable[str], *, size: int) -> Iterator[str]:
    """The chunks of the text that is the concatenation of `blocks`."""
    pending = ""
    for block in blocks:
        pending += block
        end = 0
        for separator in PARAGRAPHS.finditer(pending):
            yield from chunk_paragraph(pending[end : separator.start()], size=size)
            end = separator.end()
        pending = pending[end:]
        while len(pending) > PARAGRAPH_MAX_CHARS:
            cut = _cut(pending, PARAGRAPH_MAX_CHARS)
            yield from chunk_paragraph(pending[:cut], size=size)
            pending = pending[cut:]
    yield from chunk_paragraph(pending, size=size)


def chunk_text(text: str, *, size: int) -> list[str]:
    """Split at paragraph, then sentence boundaries, into pieces of at most `size` chars."""
    return list(chunk_blocks([text], size=size))
