"""Render an IndexForge CR into its desired objects without a cluster.

Reads the CR, validates the spec exactly as the operator does, and returns what `build_all`
produces. Generated secret values come from a caller-supplied token function, so this
module stays deterministic; only the CLI passes a random one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import yaml
from pydantic import ValidationError

from .builders import Obj, build_all
from .crd import API_VERSION, KIND
from .generated import GeneratedSecrets, complete
from .naming import Names
from .spec import IndexForgeSpec
from .yamlio import dump_stream


class RenderError(ValueError):
    """A CR that cannot be rendered; the message says why, one problem per line."""


def format_validation_error(err: ValidationError, *, prefix: str = "spec") -> str:
    lines = []
    for item in err.errors():
        path = ".".join([prefix, *(str(p) for p in item["loc"])])
        lines.append(f"{path}: {item['msg']}")
    return "\n".join(lines)


def parse_spec(raw: Any) -> IndexForgeSpec:
    try:
        return IndexForgeSpec.model_validate(raw if raw is not None else {})
    except ValidationError as err:
        raise RenderError(format_validation_error(err)) from None


def find_cr(text: str) -> Mapping[str, Any]:
    """The first IndexForge document of a YAML stream."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as err:
        raise RenderError(f"not valid YAML: {err}") from None
    for doc in docs:
        if isinstance(doc, Mapping) and doc.get("kind") == KIND:
            if doc.get("apiVersion") != API_VERSION:
                raise RenderError(
                    f"apiVersion must be {API_VERSION}, got {doc.get('apiVersion')!r}"
                )
            return doc
    raise RenderError(f"no {KIND} object found")


def names_of(cr: Mapping[str, Any], *, namespace: str | None = None) -> Names:
    meta = cr.get("metadata") or {}
    try:
        return Names(
            instance=str(meta.get("name", "")),
            namespace=namespace or meta.get("namespace") or "default",
        )
    except ValueError as err:
        raise RenderError(f"metadata: {err}") from None


def render(
    cr: Mapping[str, Any],
    *,
    token: Callable[[], str],
    prometheus_operator: bool,
    namespace: str | None = None,
    current: GeneratedSecrets | None = None,
    rabbitmq_cluster: bool = False,
    keda: bool = False,
    rabbitmq_topology: bool = False,
    istio: bool = False,
) -> list[Obj]:
    """Desired objects of `cr`; secrets not in `current` are made with `token`.

    `rabbitmq_cluster`, `keda`, `rabbitmq_topology`: render as if the RabbitmqCluster / KEDA
    ScaledObject / messaging topology operator CRDs existed, `istio`: Istio's (what `auto`
    resolves to; a forced one whose CRD is missing is left out, as the operator does).
    secrets.provider externalSecrets renders the ExternalSecrets (no generated value) as if
    their CRD existed: without it that provider has nothing to deploy."""
    names = names_of(cr, namespace=namespace)
    spec = parse_spec(cr.get("spec"))
    secrets = complete(spec, current=current or GeneratedSecrets(), token=token)
    return build_all(
        spec,
        names,
        secrets=secrets,
        prometheus_operator=prometheus_operator,
        rabbitmq_cluster=rabbitmq_cluster,
        keda=keda,
        rabbitmq_topology=rabbitmq_topology,
        istio=istio,
        external_secrets=True,
    )


def render_text(
    text: str,
    *,
    token: Callable[[], str],
    prometheus_operator: bool,
    namespace: str | None = None,
    rabbitmq_cluster: bool = False,
    keda: bool = False,
    rabbitmq_topology: bool = False,
    istio: bool = False,
) -> str:
    """`indexforge render`: a YAML stream of every object."""
    objs = render(
        find_cr(text),
        token=token,
        prometheus_operator=prometheus_operator,
        namespace=namespace,
        rabbitmq_cluster=rabbitmq_cluster,
        keda=keda,
        rabbitmq_topology=rabbitmq_topology,
        istio=istio,
    )
    return dump_stream(objs)
