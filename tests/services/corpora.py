"""Search corpora: a small product catalog (the needles) inside adversarial haystacks.

Each corpus is a CSV of `name,description` rows: the same twelve catalog rows plus filler
that is hard for an approximate vector index or for ranking (the shapes that broke search
in issue 16). `queries` each name the catalog row a person would expect first; filler-
directed queries have no expected row (they only count for recall against exact search).
Sizes scale with `filler` so the tests stay small and the benchmark can go large.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass

CATALOG = [
    ("Umbrella", "A folding umbrella that keeps you dry when it rains"),
    ("Compact refrigerator", "Keeps drinks and food cold in a small office"),
    ("Electric kettle", "Boils water for tea in about a minute"),
    ("Desk lamp", "Bright LED light for reading and working at a desk"),
    ("Space heater", "Warms a small room on cold winter evenings"),
    ("Blender", "Makes smoothies and soups from fresh fruit and vegetables"),
    ("Hiking boots", "Waterproof leather boots for rocky mountain trails"),
    ("Sunscreen", "Protects skin from sunburn at the beach"),
    ("Bicycle helmet", "Protects your head when cycling in traffic"),
    ("Coffee grinder", "Grinds roasted beans for fresh coffee"),
    ("Sleeping bag", "Keeps you warm at night when camping outdoors"),
    ("Noise-cancelling headphones", "Blocks engine noise on long flights"),
]
QUERIES = [
    ("umbrella for rain", "Umbrella"),
    ("something to keep drinks cold", "Compact refrigerator"),
    ("a way to make tea", "Electric kettle"),
    ("light for reading at night", "Desk lamp"),
    ("heating for a cold room", "Space heater"),
    ("machine for fruit smoothies", "Blender"),
    ("shoes for walking in the mountains", "Hiking boots"),
    ("protection from the sun on holiday", "Sunscreen"),
    ("safety gear for riding a bike", "Bicycle helmet"),
    ("fresh coffee in the morning", "Coffee grinder"),
    ("staying warm while camping", "Sleeping bag"),
    ("quiet on a plane", "Noise-cancelling headphones"),
]

LONG_TEXT = (
    "This worksheet was exported from the legacy inventory system. The values in this row "
    "are carried over unchanged from the previous quarter and have not been reviewed by the "
    "warehouse team. Please do not edit the cells in this range directly; changes must go "
    "through the procurement request form so that the audit trail stays complete. "
) * 4
NEAR_DUPLICATE = "Placeholder entry, details to be confirmed (reference {n:05d})"
EMPTYISH = ["-", "n/a", "N/A", "TBD", ".", "0", "?", "none", "--", "x", "tbc", "null"]
NOUNS = [
    ("teapot", "brews loose leaf tea"), ("stapler", "binds sheets of paper"),
    ("garden hose", "waters plants and lawns"), ("alarm clock", "wakes you up on time"),
    ("bookshelf", "holds books and folders"), ("frying pan", "fries eggs and pancakes"),
    ("yoga mat", "cushions floor exercises"), ("paint roller", "paints walls quickly"),
    ("toolbox", "stores hammers and screwdrivers"), ("backpack", "carries school books"),
    ("laundry basket", "collects dirty clothes"), ("cutting board", "protects the worktop"),
    ("doormat", "wipes muddy shoes"), ("wall clock", "shows the time in a room"),
    ("ice scraper", "clears frost from car windows"), ("plant pot", "holds soil for herbs"),
    ("tape measure", "measures lengths and widths"), ("shower curtain", "keeps water in the tub"),
    ("dish rack", "dries washed plates"), ("extension cord", "reaches distant sockets"),
]  # fmt: skip
MATERIALS = ["steel", "bamboo", "plastic", "oak", "ceramic", "glass", "copper", "cotton"]
FOREIGN = [
    "Ein praktisches Gerät für die Küche, Modell {n}",
    "Un appareil pratique pour la cuisine, modèle {n}",
    "Un aparato práctico para la cocina, modelo {n}",
    "台所で使える便利な道具、モデル {n}",
    "Удобный прибор для кухни, модель {n}",
    "جهاز عملي للمطبخ، طراز {n}",
    "Un apparecchio pratico per la cucina, modello {n}",
    "Praktyczne urządzenie kuchenne, model {n}",
]
FILLER_QUERIES = {
    "near_duplicates": ["placeholder entry to be confirmed", "reference 00042"],
    "long_repeated": ["legacy inventory export", "procurement request form"],
    "exact_duplicates": ["a plastic stapler", "oak bookshelf"],
    "emptyish": ["not available", "to be confirmed"],
    "languages": ["kitchen appliance", "Küchengerät"],
    "plain": ["something to dry plates", "measuring a wall"],
}


@dataclass(frozen=True)
class Corpus:
    name: str
    rows: list[tuple[str, str]]  # (name, description); catalog rows included

    def csv_bytes(self) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["name", "description"])
        writer.writerows(self.rows)
        return out.getvalue().encode()

    def queries(self) -> list[tuple[str, str | None]]:
        """(query, expected catalog name or None for filler-directed queries)."""
        extra: list[tuple[str, str | None]] = [(q, None) for q in FILLER_QUERIES[self.name]]
        return [*QUERIES, *extra]


def _spread(filler: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The catalog rows spread through the filler (not all at the top of the file)."""
    rows = list(filler)
    step = max(1, len(rows) // (len(CATALOG) + 1))
    for i, row in enumerate(CATALOG):
        rows.insert(min(len(rows), (i + 1) * step + i), row)
    return rows


def plain(n: int) -> list[tuple[str, str]]:
    return [
        (f"{MATERIALS[i % len(MATERIALS)]} {noun}", f"{what}; item {i}")
        for i, (noun, what) in ((i, NOUNS[i % len(NOUNS)]) for i in range(n))
    ]


def exact_duplicates(n: int) -> list[tuple[str, str]]:
    distinct = plain(20)
    return [distinct[i % len(distinct)] for i in range(n)]


def near_duplicates(n: int) -> list[tuple[str, str]]:
    return [("Placeholder", NEAR_DUPLICATE.format(n=i)) for i in range(n)]


def long_repeated(n: int) -> list[tuple[str, str]]:
    return [("Imported row", LONG_TEXT) for _ in range(n)]


def emptyish(n: int) -> list[tuple[str, str]]:
    return [
        (EMPTYISH[i % len(EMPTYISH)], EMPTYISH[(i // len(EMPTYISH)) % len(EMPTYISH)] + f" {i}")
        for i in range(n)
    ]


def languages(n: int) -> list[tuple[str, str]]:
    return [(f"Artikel {i}", FOREIGN[i % len(FOREIGN)].format(n=i)) for i in range(n)]


FILLERS: dict[str, Callable[[int], list[tuple[str, str]]]] = {
    "plain": plain,
    "exact_duplicates": exact_duplicates,
    "near_duplicates": near_duplicates,
    "long_repeated": long_repeated,
    "emptyish": emptyish,
    "languages": languages,
}


def corpus(name: str, filler: int) -> Corpus:
    return Corpus(name, _spread(FILLERS[name](filler)))


def all_corpora(filler: int) -> list[Corpus]:
    return [corpus(name, filler) for name in FILLERS]
