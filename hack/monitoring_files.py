"""Chart data generated from the operator's monitoring builders (one source, no hand copy).

* ``charts/indexforge/files/monitoring/slo-rules.json`` — per SLO family (services, gateway)
  the rule group name, recording rules and alerts of ``indexforge_operator.slo``.
* ``charts/indexforge/files/monitoring/dashboards/indexforge-<key>.json`` — every dashboard
  of ``indexforge_operator.builders.dashboards``, byte for byte what the operator puts in its
  ConfigMaps.

Both are built for placeholder names; the templates (``_monitoring.tpl``, ``_dashboard.tpl``)
substitute the release's namespace and name, the uid digest, objectives and runbook base with
``replace``. kube-prometheus-stack generates its rules and dashboards the same way (by script,
checked current in CI).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from indexforge_operator.builders.dashboards import MODULES, dashboards, file_name, to_json
from indexforge_operator.slo import FAMILIES, KINDS, family_rules

# Tokens the templates replace; keep in sync with charts/indexforge/templates/_*.tpl.
NAMESPACE: Final = "__NAMESPACE__"
INSTANCE: Final = "__INSTANCE__"
UID_DIGEST: Final = "__UID_DIGEST__"
RUNBOOK_BASE: Final = "__RUNBOOK_BASE__"


def objective_token(family: str, kind: str) -> str:
    return f"__OBJECTIVE_{family.upper()}_{kind.upper()}__"


@dataclass(frozen=True)
class Placeholders:
    """Stands in for `Names` (a Scope) with tokens instead of validated names."""

    namespace: str = NAMESPACE
    instance: str = INSTANCE


def slo_rules() -> str:
    scope = Placeholders()
    data = {
        family: family_rules(
            scope,
            family,
            objectives={kind: objective_token(family, kind) for kind in KINDS},
            runbook_base=RUNBOOK_BASE,
        )
        for family in FAMILIES
    }
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def dashboard_files() -> dict[str, str]:
    boards = dashboards(Placeholders(), digest=UID_DIGEST)
    assert list(boards) == list(MODULES)
    return {file_name(key): to_json(board) for key, board in boards.items()}


def outputs(chart: Path) -> list[tuple[Path, str]]:
    base = chart / "files" / "monitoring"
    out = [(base / "slo-rules.json", slo_rules())]
    out += [(base / "dashboards" / name, text) for name, text in dashboard_files().items()]
    return out
