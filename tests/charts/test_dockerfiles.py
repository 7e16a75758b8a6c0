"""Every Dockerfile parses and follows the image rules (no Docker engine needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.charts.dockerfile import build_arg_choices, parse, violations

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted(REPO.glob("docker/*.Dockerfile"))
EXPECTED = {"operator", "api", "ml", "excel"}


def test_every_image_has_a_dockerfile() -> None:
    assert {p.name.removesuffix(".Dockerfile") for p in DOCKERFILES} == EXPECTED


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_follows_the_rules(path: Path) -> None:
    text = path.read_text()
    for args in build_arg_choices(text):
        problems = violations(text, args)
        assert not problems, f"{path.name} {args}:\n  " + "\n  ".join(problems)


def test_ml_image_has_cpu_and_cuda_variants() -> None:
    text = (REPO / "docker" / "ml.Dockerfile").read_text()
    assert {c.get("VARIANT") for c in build_arg_choices(text)} == {"cpu", "cuda"}
    df = parse(text)
    assert df.global_args["VARIANT"] == "cpu"  # CPU unless asked
    assert {"runtime-cpu", "runtime-cuda"} <= {s.name for s in df.stages}


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerignore_sends_only_sources(path: Path) -> None:
    ignore = path.with_name(path.name + ".dockerignore").read_text().splitlines()
    assert ignore[ignore.index("*") :][:1] == ["*"], "ignore everything, then allow-list"
    assert "!operator/" in ignore and "!services/" in ignore


GOOD = """\
ARG BASE=docker.io/library/python:3.11.13-slim-bookworm
FROM ${BASE} AS build
RUN pip install --no-cache-dir .
FROM ${BASE}
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
ENTRYPOINT ["app"]
"""


def _replace(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


def test_good_example_passes() -> None:
    assert violations(GOOD) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (_replace("USER 10001:10001\n", ""), "no USER"),
        (_replace("USER 10001:10001", "USER 0"), "runs as root"),
        (_replace("USER 10001:10001", "USER app"), "must be numeric"),
        (_replace("3.11.13-slim-bookworm", "3.11-slim"), "not pinned"),
        (_replace("3.11.13-slim-bookworm", "latest"), "not pinned"),
        (_replace(":3.11.13-slim-bookworm", ""), "not pinned"),
        (
            _replace('ENTRYPOINT ["app"]', 'ENTRYPOINT ["app"]\nHEALTHCHECK CMD curl -f localhost'),
            "HEALTHCHECK",
        ),
        (
            _replace(
                "COPY --from", "RUN apt-get install -y --no-install-recommends gcc\nCOPY --from"
            ),
            "build tool 'gcc'",
        ),
        (
            _replace("COPY --from", "RUN apt-get install -y curl\nCOPY --from"),
            "--no-install-recommends",
        ),
        (
            _replace("COPY --from", "RUN pip install requests\nCOPY --from"),
            "pip install in the final",
        ),
        (_replace('ENTRYPOINT ["app"]', "ENTRYPOINT app"), "JSON (exec) form"),
        (
            _replace("COPY --from=build /opt/venv /opt/venv", "ADD https://x.invalid/a.tgz /a"),
            "instead of ADD",
        ),
        ("FROM docker.io/library/python:3.11.13-slim\nUSER 10001\n", "not multi-stage"),
        (_replace("FROM ${BASE}\n", "FROM ${OTHER}\n"), "has no value"),
        (_replace("RUN pip", "FOO pip"), "does not parse"),
        (_replace("RUN pip install --no-cache-dir .", "WORKDIR src"), "absolute path"),
    ],
)
def test_each_rule_can_fail(text: str, expected: str) -> None:
    problems = violations(text)
    assert any(expected in p for p in problems), problems


def test_build_tools_inherited_from_an_earlier_stage_count() -> None:
    text = _replace(
        "FROM ${BASE}\n",
        "FROM ${BASE} AS base\nRUN apt-get install -y --no-install-recommends make\nFROM base\n",
    )
    assert any("build tool 'make'" in p for p in violations(text))
