"""The config-reloader sidecar: Prometheus and Alertmanager reload a changed config instead of
restarting (a restart of Prometheus replays its WAL and interrupts scraping and alerting).

prometheus-operator's `prometheus-config-reloader` watches the mounted ConfigMap/Secret
directory (kubelet swaps the `..data` symlink on an update) and POSTs the reload URL. So the
pod template carries no checksum of that config: a changed rule file reaches the running
process through the volume, and only what needs a restart (image, flags) rolls the pod.
"""

from __future__ import annotations

from ..spec import IndexForgeSpec
from .common import Obj, container_security, tmp_mount


def config_reloader(spec: IndexForgeSpec, *, volume: str, watched_dir: str, reload_url: str) -> Obj:
    """Sidecar container watching `volume` mounted read-only at `watched_dir` (the path the
    main container reads it at); `reload_url` is on the pod's loopback."""
    reloader = spec.monitoring.config_reloader
    return {
        "name": "config-reloader",
        "image": reloader.image,
        "imagePullPolicy": reloader.image_pull_policy,
        "args": [
            f"--watched-dir={watched_dir}",
            f"--reload-url={reload_url}",
            # No metrics listener: nothing scrapes the sidecar, so it opens no port.
            "--listen-address=",
        ],
        "resources": {
            "requests": {"cpu": "10m", "memory": "16Mi"},
            "limits": {"cpu": "100m", "memory": "64Mi"},
        },
        "securityContext": container_security(),
        # The pod's /tmp volume too: the root filesystem is read-only.
        "volumeMounts": [
            {"name": volume, "mountPath": watched_dir, "readOnly": True},
            tmp_mount(),
        ],
    }
