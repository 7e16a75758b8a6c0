"""Search parameters: bad values are a clear 422; alpha, the relevance floor and the limit
do what the README says, on a real Weaviate with the real model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .conftest import ApiFactory, ServerThread, wait_job
from .corpora import corpus

UNRELATED = "quantum chromodynamics lattice simulation results"


@pytest.fixture(scope="module")
def api(make_api: ApiFactory) -> Iterator[tuple[ServerThread, httpx.Client]]:
    with make_api() as server, httpx.Client(base_url=server.url, timeout=60) as client:
        data = corpus("plain", 40).csv_bytes()
        accepted = client.post("/api/v1/documents", files={"file": ("shop.csv", data, "text/csv")})
        assert accepted.status_code == 202, accepted.text[:300]
        assert wait_job(client, accepted.json()["job_id"])["status"] == "completed"
        yield server, client


BAD = [
    ("alpha above 1", {"alpha": 1.5}, "alpha", "less than or equal to 1"),
    ("alpha below 0", {"alpha": -0.1}, "alpha", "greater than or equal to 0"),
    ("alpha not a number", {"alpha": "high"}, "alpha", "valid number"),
    ("alpha NaN", {"alpha": "nan"}, "alpha", "alpha"),
    ("min_score above 1", {"min_score": 1.2}, "min_score", "less than or equal to 1"),
    ("min_score below -1", {"min_score": -3}, "min_score", "greater than or equal to -1"),
    ("min_score not a number", {"min_score": "low"}, "min_score", "valid number"),
    ("limit 0", {"limit": 0}, "limit", "greater than or equal to 1"),
    ("limit above 100", {"limit": 500}, "limit", "less than or equal to 100"),
]


@pytest.mark.parametrize(
    ("params", "field", "words"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_ranking_parameters_are_a_clear_422(
    api: tuple[ServerThread, httpx.Client], params: dict[str, Any], field: str, words: str
) -> None:
    _, client = api
    response = client.get("/api/v1/search", params={"q": "umbrella", **params})
    assert response.status_code == 422, response.text[:300]
    error = response.json()["error"]
    assert field in error and words in error, error


def search(client: httpx.Client, q: str, **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/search", params={"q": q, **params})
    assert response.status_code == 200, response.text[:300]
    body: dict[str, Any] = response.json()
    return body


def test_unrelated_query_answers_nothing_rather_than_filler(
    api: tuple[ServerThread, httpx.Client],
) -> None:
    server, client = api
    floor = server.app.state.api_service.settings.search_min_score
    default = search(client, UNRELATED)
    assert default["min_score"] == floor and default["results"] == [], default["results"][:2]
    # The floor is what hid them: without it the same query returns the nearest filler.
    unfloored = search(client, UNRELATED, min_score=-1)["results"]
    assert len(unfloored) == 10 and all(h["score"] < floor for h in unfloored)
    related = search(client, "umbrella for rain")["results"]
    assert related[0]["fields"]["name"] == "Umbrella" and related[0]["score"] >= floor
    assert all(h["score"] >= floor for h in related)


def test_min_score_and_limit_bound_the_hits(api: tuple[ServerThread, httpx.Client]) -> None:
    _, client = api
    loose = search(client, "kitchen tools", min_score=-1, limit=7)["results"]
    assert len(loose) == 7
    scores = [h["score"] for h in loose]
    assert scores == sorted(scores, reverse=True)
    cut = (scores[2] + scores[3]) / 2
    strict = search(client, "kitchen tools", min_score=cut, limit=7)["results"]
    assert [h["id"] for h in strict] == [h["id"] for h in loose[:3]]


def test_alpha_zero_is_keyword_search_and_alpha_one_is_by_meaning(
    api: tuple[ServerThread, httpx.Client],
) -> None:
    _, client = api
    # "brews" occurs in one row only (the teapots); by meaning, the kettle is closer.
    words = search(client, "brews", alpha=0, min_score=-1, limit=3)
    assert words["alpha"] == 0
    assert words["results"] and all("brews" in h["text"] for h in words["results"])
    fused = [h["hybrid_score"] for h in words["results"]]
    assert all(s is not None for s in fused) and fused == sorted(fused, reverse=True)
    meaning = search(client, "brews", min_score=-1, limit=3)["results"]
    assert all(h["hybrid_score"] is None for h in meaning)
    scores = [h["score"] for h in meaning]
    assert scores == sorted(scores, reverse=True)


def test_hybrid_weights_keywords_against_meaning(api: tuple[ServerThread, httpx.Client]) -> None:
    _, client = api
    q = "something that boils water"
    half = search(client, q, alpha=0.5, min_score=-1, limit=5)
    assert half["alpha"] == 0.5 and half["results"]
    assert half["results"][0]["fields"]["name"] == "Electric kettle"
    assert all(h["hybrid_score"] is not None for h in half["results"])
    # Each alpha is its own cached answer.
    again = client.get("/api/v1/search", params={"q": q, "alpha": 0.6, "min_score": -1})
    assert again.headers["X-Cache"] == "miss"
