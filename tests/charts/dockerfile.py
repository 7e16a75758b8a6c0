"""A small Dockerfile parser and the image rules every IndexForge Dockerfile must follow.

No Docker engine: the file is parsed into stages and instructions (line continuations,
comments, parser directives, ``ARG`` defaults substituted into ``FROM``), then judged by
hadolint-style rules. ``violations(text, build_args)`` returns human-readable findings; an
empty list means the file passes.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

INSTRUCTIONS = frozenset(
    [
        "ADD",
        "ARG",
        "CMD",
        "COPY",
        "ENTRYPOINT",
        "ENV",
        "EXPOSE",
        "FROM",
        "HEALTHCHECK",
        "LABEL",
        "MAINTAINER",
        "ONBUILD",
        "RUN",
        "SHELL",
        "STOPSIGNAL",
        "USER",
        "VOLUME",
        "WORKDIR",
    ]
)
# Compilers, build systems and fetchers: none of them belongs in a runtime image.
BUILD_TOOLS = frozenset(
    [
        "build-essential",
        "gcc",
        "g++",
        "cc",
        "clang",
        "make",
        "cmake",
        "ninja-build",
        "autoconf",
        "automake",
        "libtool",
        "pkg-config",
        "git",
        "curl",
        "wget",
        "cargo",
        "rustc",
        "golang",
        "python3-dev",
        "python3-pip",
        "musl-dev",
        "linux-headers",
    ]
)
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
_EXACT_TAG = re.compile(r"^v?[0-9]+\.[0-9]+\.[0-9]+([-._][A-Za-z0-9.-]+)?$")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


class DockerfileError(ValueError):
    """The text is not a Dockerfile this parser understands."""


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    args: str

    def exec_form(self) -> list[str] | None:
        """The JSON (exec) form's argument list, or None for the shell form."""
        text = self.args.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


@dataclass
class Stage:
    index: int
    base: str  # as written, before ARG substitution
    name: str | None
    line: int
    instructions: list[Instruction] = field(default_factory=list)


@dataclass
class Dockerfile:
    global_args: dict[str, str | None]
    stages: list[Stage]
    instructions: list[Instruction]

    def stage_by_name(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    """Join continuation lines; drop comments and blank lines (directives are comments too)."""
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not buffer):
            continue  # comments may sit inside a continued instruction
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer.append(stripped[:-1].rstrip())
            continue
        buffer.append(stripped)
        yield start, " ".join(p for p in buffer if p)
        buffer = []
    if buffer:
        raise DockerfileError(f"line {start}: continuation runs past the end of the file")


def parse(text: str) -> Dockerfile:
    global_args: dict[str, str | None] = {}
    stages: list[Stage] = []
    every: list[Instruction] = []
    for number, line in _logical_lines(text):
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword not in INSTRUCTIONS:
            raise DockerfileError(f"line {number}: unknown instruction {keyword!r}")
        if "<<" in args and keyword in ("RUN", "COPY"):
            raise DockerfileError(f"line {number}: heredocs are not supported by this checker")
        inst = Instruction(number, keyword, args.strip())
        every.append(inst)
        if keyword == "FROM":
            words = args.split()
            words = [w for w in words if not w.startswith("--platform")]
            if not words:
                raise DockerfileError(f"line {number}: FROM without an image")
            name = None
            if len(words) >= 3 and words[1].lower() == "as":
                name = words[2]
            elif len(words) != 1:
                raise DockerfileError(f"line {number}: cannot read FROM {args!r}")
            stages.append(Stage(len(stages), words[0], name, number))
        elif not stages:
            if keyword != "ARG":
                raise DockerfileError(f"line {number}: only ARG may come before the first FROM")
            key, eq, value = inst.args.partition("=")
            global_args[key.strip()] = value.strip().strip('"') if eq else None
        else:
            stages[-1].instructions.append(inst)
    if not stages:
        raise DockerfileError("no FROM instruction")
    return Dockerfile(global_args, stages, every)


def substitute(text: str, values: Mapping[str, str | None]) -> str:
    def repl(match: re.Match[str]) -> str:
        key = match.group(1) or match.group(2)
        value = values.get(key)
        if value is None:
            raise DockerfileError(f"${key} has no value (declare ARG {key}=<default>)")
        return value

    return _VAR.sub(repl, text)


def final_chain(df: Dockerfile, args: Mapping[str, str | None]) -> list[Stage]:
    """The last stage and every stage it is built FROM, final first."""
    chain = [df.stages[-1]]
    while True:
        base = substitute(chain[-1].base, args)
        parent = df.stage_by_name(base)
        if parent is None or parent in chain:
            return chain
        chain.append(parent)


def _installed_packages(command: str) -> list[str]:
    """Package names of apt-get/apk/pip install commands inside one RUN."""
    found: list[str] = []
    for part in re.split(r"&&|;|\|\|", command):
        try:
            words = shlex.split(part)
        except ValueError:
            words = part.split()
        words = [w for w in words if w not in ("sudo",)]
        for i, word in enumerate(words):
            if word in ("apt-get", "apt", "apk", "yum", "dnf") and "install" in words[i : i + 3]:
                at = words.index("install", i) + 1 if "install" in words[i:] else len(words)
                found += [w for w in words[at:] if not w.startswith("-")]
                break
            if word.endswith("pip") or word.endswith("pip3"):
                if "install" in words[i:]:
                    at = words.index("install", i) + 1
                    found += ["pip:" + w for w in words[at:] if not w.startswith("-")]
                break
    return found


def violations(text: str, build_args: Mapping[str, str] | None = None) -> list[str]:
    """Every rule the Dockerfile breaks, for one set of build args."""
    try:
        df = parse(text)
    except DockerfileError as err:
        return [f"does not parse: {err}"]
    args: dict[str, str | None] = {**df.global_args, **(build_args or {})}
    found: list[str] = []
    if len(df.stages) < 2:
        found.append("not multi-stage: build in one stage, copy the result into a runtime stage")
    names = [s.name for s in df.stages if s.name]
    if len(names) != len(set(names)):
        found.append("stage names are not unique")
    for stage in df.stages:
        try:
            base = substitute(stage.base, args)
        except DockerfileError as err:
            found.append(f"line {stage.line}: {err}")
            continue
        if df.stage_by_name(base) is not None or base == "scratch":
            continue
        _, _, tag = base.rpartition(":") if ":" in base.rsplit("/", 1)[-1] else ("", "", "")
        if not (_DIGEST.search(base) or _EXACT_TAG.match(tag.split("@")[0])):
            found.append(
                f"line {stage.line}: base image {base!r} is not pinned (exact tag or digest)"
            )
    for inst in df.instructions:
        where = f"line {inst.line}"
        if inst.keyword == "HEALTHCHECK":
            found.append(f"{where}: HEALTHCHECK is not allowed (probes live in Kubernetes)")
        if inst.keyword == "ADD":
            found.append(f"{where}: use COPY instead of ADD")
        if inst.keyword == "MAINTAINER":
            found.append(f"{where}: MAINTAINER is deprecated (use a LABEL)")
        if inst.keyword == "WORKDIR" and not inst.args.startswith(("/", "$")):
            found.append(f"{where}: WORKDIR must be an absolute path")
        if inst.keyword in ("CMD", "ENTRYPOINT") and inst.exec_form() is None:
            found.append(f"{where}: {inst.keyword} must use the JSON (exec) form")
        if inst.keyword == "RUN":
            if re.search(r"\bapt-get\s+(-\S+\s+)*install\b", inst.args) and (
                "--no-install-recommends" not in inst.args
            ):
                found.append(f"{where}: apt-get install without --no-install-recommends")
            if re.search(r"\bapt-get\s+upgrade\b|\bapt-get\s+dist-upgrade\b", inst.args):
                found.append(f"{where}: apt-get upgrade in an image build (pin the base instead)")
    try:
        chain = final_chain(df, args)
    except DockerfileError as err:
        return [*found, f"final stage: {err}"]
    final_insts = [i for stage in reversed(chain) for i in stage.instructions]
    users = [i for i in final_insts if i.keyword == "USER"]
    if not users:
        found.append("final stage has no USER: it would run as root")
    else:
        user = users[-1].args.split(":")[0].strip()
        if not user.isdigit():
            found.append(
                f"line {users[-1].line}: USER {user!r} must be numeric (runAsNonRoot checks uids)"
            )
        elif int(user) == 0:
            found.append(f"line {users[-1].line}: final stage runs as root (USER 0)")
    for inst in final_insts:
        if inst.keyword != "RUN":
            continue
        for pkg in _installed_packages(inst.args):
            name = pkg.removeprefix("pip:")
            if pkg.startswith("pip:"):
                found.append(
                    f"line {inst.line}: pip install in the final stage ({name}); build it earlier"
                )
            elif re.split(r"[=<>]", name)[0] in BUILD_TOOLS:
                found.append(f"line {inst.line}: build tool {name!r} installed in the final stage")
    return found


def build_arg_choices(text: str) -> list[dict[str, str]]:
    """Build-arg sets to check: one per value a `case "${ARG}" in a) ... b) ...` accepts."""
    df = parse(text)
    combos: list[dict[str, str]] = [{}]
    for key in df.global_args:
        values = sorted(set(re.findall(rf'case "\$\{{{key}\}}" in(.*?)esac', text, flags=re.S)))
        choices: list[str] = []
        for body in values:
            choices += [c for c in re.findall(r"(?:^|\s)([a-z0-9]+)\)", body)]
        if choices:
            combos = [{**c, key: v} for c in combos for v in choices]
    return combos
