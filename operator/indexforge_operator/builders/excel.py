"""Excel processor: Deployment, Services, PDB."""

from __future__ import annotations

from ..naming import Names
from ..spec import IndexForgeSpec
from . import ports
from .common import Obj, env
from .python_service import ServiceShape, build_python_service, common_env


def build_excel(spec: IndexForgeSpec, names: Names) -> list[Obj]:
    excel = spec.excel
    if not excel.enabled:
        return []
    shape = ServiceShape(
        component="excel",
        image=excel.image,
        pull_policy=excel.image_pull_policy,
        replicas=excel.replicas,
        max_replicas=excel.replicas,
        port=ports.EXCEL,
        resources=excel.resources,
        budget=excel.pod_disruption_budget,
        env=[
            *common_env(spec, names, "excel", excel.log_level),
            env(
                "INDEXFORGE_REDIS_URL",
                f"redis://{names.fqdn(names.component('redis-app'))}:{ports.REDIS}/1",
            ),
            env("INDEXFORGE_MAX_UPLOAD_BYTES", excel.max_upload_megabytes * 1024 * 1024),
            env("INDEXFORGE_MAX_ROWS", excel.max_rows),
        ],
        redis="redis-app",
    )
    return build_python_service(spec, names, shape)
