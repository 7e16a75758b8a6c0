"""Pure parts of search and dedup: content ids, references, candidate order, settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from indexforge_services.api.content import group_records
from indexforge_services.api.index_config import vector_index
from indexforge_services.api.ranking import Ranking, SearchRequest, by_similarity, hits
from indexforge_services.api.refs import (
    Reference,
    add_rows,
    decode,
    encode,
    filter_properties,
    matching,
    merge_ranges,
    without_document,
)
from indexforge_services.api.store import SearchFilters, StoredObject
from indexforge_services.common.identity import content_id, document_id, normalise_text
from indexforge_services.common.tabular import Record

from .conftest import api_settings


def test_content_id_ignores_case_width_and_spacing_but_not_words_or_collection() -> None:
    a = content_id("Col", "Umbrella:  keeps you dry\n when it rains")
    assert a == content_id("Col", "umbrella: keeps you dry when it rains ")
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in "UMBRELLA")
    assert a == content_id("Col", f"{fullwidth}: keeps you dry when it rains")
    assert a != content_id("Col", "umbrella: keeps you dry when it snows")
    assert a != content_id("Other", "umbrella: keeps you dry when it rains")
    assert normalise_text("  A\u00a0b  ") == "a b"


def test_document_id_is_the_same_for_the_same_upload_only() -> None:
    base = {"kind": "csv", "source": "a.csv", "digest": "00" * 32}
    assert document_id("Col", **base) == document_id("Col", **base)
    assert document_id("Col", **base) != document_id("Col", **{**base, "source": "b.csv"})
    assert document_id("Col", **base) != document_id("Col", **{**base, "digest": "11" * 32})
    assert document_id("Col", **base) != document_id("Col", **{**base, "kind": "text"})


def test_row_ranges_merge_overlaps_and_neighbours_per_sheet() -> None:
    merged = merge_ranges([("S", 5, 5), ("S", 1, 3), ("S", 4, 4), ("T", 4, 4), ("S", 9, 9)])
    assert merged == (("S", 1, 5), ("S", 9, 9), ("T", 4, 4))


def test_adding_rows_is_idempotent_and_keeps_documents_apart() -> None:
    one = add_rows([], document_id="d1", source="a.csv", kind="csv", rows=[("", 2), ("", 3)])
    assert one == [Reference("d1", "a.csv", "csv", (("", 2, 3),))]
    again = add_rows(one, document_id="d1", source="a.csv", kind="csv", rows=[("", 3)])
    assert again == one  # a retried batch changes nothing
    two = add_rows(one, document_id="d2", source="b.csv", kind="csv", rows=[("", 7)])
    assert [r.document_id for r in two] == ["d1", "d2"] and two[0].records == 2
    kept, removed = without_document(two, "d1")
    assert (kept, removed) == ([two[1]], 2)
    assert decode(encode(two)) == two
    assert filter_properties(two) == {
        "document_ids": ["d1", "d2"],
        "sources": ["a.csv", "b.csv"],
        "kinds": ["csv"],
        "sheets": [""],
    }


def test_matching_needs_one_reference_to_satisfy_every_filter() -> None:
    refs = [
        Reference("d1", "a.xlsx", "xlsx", (("Prices", 2, 2),)),
        Reference("d2", "b.csv", "csv", (("", 4, 4),)),
    ]
    # Weaviate's arrays hold source a.xlsx and kind csv, but no single reference has both.
    assert matching(refs, source="a.xlsx", kind="csv") == []
    assert matching(refs, source="a.xlsx", sheet="Prices") == [refs[0]]
    assert matching(refs, sheet="Other") == []
    assert matching(refs) == refs


def test_records_with_the_same_text_form_one_group() -> None:
    records = [
        Record("S", 2, {"a": "x"}, "Name: Umbrella"),
        Record("S", 3, {"a": "y"}, "Name: Kettle"),
        Record("S", 4, {"a": "x"}, "name:  umbrella"),
    ]
    groups = group_records("Col", records)
    assert [g.rows for g in groups.values()] == [[("S", 2), ("S", 4)], [("S", 3)]]
    assert next(iter(groups.values())).text == "Name: Umbrella"  # the first one's text


def _obj(oid: str, similarity: float | None, *refs: Reference) -> StoredObject:
    distance = None if similarity is None else 1.0 - similarity
    return StoredObject(id=oid, text=oid, fields="{}", refs=list(refs), distance=distance)


def test_candidates_rank_by_similarity_with_stable_ties_and_the_floor_applies() -> None:
    ref = Reference("d1", "a.csv", "csv", (("", 2, 2),))
    other = Reference("d2", "b.csv", "csv", (("", 5, 5),))
    ranked = by_similarity(
        [_obj("c", 0.5, ref), _obj("a", 0.9, ref), _obj("b", 0.5, ref), _obj("x", None, ref)]
    )
    assert [o.id for o in ranked] == ["a", "b", "c"]
    request = SearchRequest("q", limit=2, alpha=1.0, min_score=0.6, filters=SearchFilters())
    assert [h["id"] for h in hits(request, ranked)] == ["a"]
    request = SearchRequest("q", limit=2, alpha=1.0, min_score=-1.0, filters=SearchFilters())
    assert [h["id"] for h in hits(request, ranked)] == ["a", "b"]
    only_d2 = SearchFilters(document_id="d2")
    request = SearchRequest("q", limit=5, alpha=1.0, min_score=-1.0, filters=only_d2)
    assert hits(request, [_obj("a", 0.9, ref), _obj("m", 0.4, ref, other)]) == [
        {
            "id": "m",
            "document_id": "d2",
            "source": "b.csv",
            "kind": "csv",
            "sheet": None,
            "row": 5,
            "text": "m",
            "fields": {},
            "distance": pytest.approx(0.6),
            "score": pytest.approx(0.4),
            "hybrid_score": None,
            "references": [ref.as_dict(), other.as_dict()],
            "documents": 2,
        }
    ]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"index_type": "hnsw", "index_ef": 128}, ("hnsw", 128)),
        ({"index_type": "flat"}, ("flat", None)),
        ({"index_type": "dynamic", "index_dynamic_threshold": 500}, ("dynamic", 500)),
    ],
)
def test_index_settings_become_the_collection_vector_index(
    overrides: dict[str, object], expected: tuple[str, int | None]
) -> None:
    config = vector_index(api_settings(**overrides))
    kind, value = expected
    assert config.vector_index_type().value == kind
    assert config.distance.value == "cosine"
    if kind == "hnsw":
        assert (config.ef, config.efConstruction, config.maxConnections) == (value, 256, 32)
    if kind == "dynamic":
        assert config.threshold == value and config.hnsw is not None and config.flat is not None


@pytest.mark.parametrize(
    "bad",
    [
        {"search_alpha": 1.5},
        {"search_alpha": -0.1},
        {"search_min_score": 1.01},
        {"search_overfetch": 0},
        {"index_type": "ivf"},
        {"index_max_connections": 2},
    ],
)
def test_out_of_range_search_settings_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError) as info:
        api_settings(**bad)
    assert next(iter(bad)) in str(info.value)


def test_the_keyword_arm_only_rescues_approximate_indexes() -> None:
    assert Ranking.from_settings(api_settings()) == Ranking(4, keyword_candidates=False)
    hnsw = api_settings(index_type="hnsw", search_overfetch=3)
    assert Ranking.from_settings(hnsw) == Ranking(3, keyword_candidates=True)
    off = api_settings(index_type="dynamic", search_keyword_candidates=False)
    assert Ranking.from_settings(off).keyword_candidates is False
