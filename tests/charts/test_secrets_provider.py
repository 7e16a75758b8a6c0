"""The static chart and secrets.provider: vault fails the release with the reason (a chart
cannot write to Vault), the CRD's rules are mirrored, externalSecrets renders ExternalSecrets
and never a Secret holding a template (parity with the operator: ci/external-secrets)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from tests.charts.helmtools import STATIC_CHART, helm
from tests.charts.parity import load_stream

VAULT = {"address": "https://vault.vault.svc:8200"}


def _template(tmp_path: Path, values: dict[str, object], *, check: bool = True) -> str:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return helm("template", "demo", str(STATIC_CHART), "-n", "ns1", "-f", str(path), check=check)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"secrets": {"provider": "vault", "vault": VAULT}},
         "secrets.provider vault needs the IndexForge operator"),
        ({"secrets": {"provider": "vault"}},
         "secrets.vault.address is required when secrets.provider is vault"),
        ({"secrets": {"provider": "externalSecrets"}},
         "secrets.externalSecrets needs vault.address"),
        ({"secrets": {"provider": "externalSecrets", "vault": VAULT},
          "credentials": {"existingSecret": "mine"}},
         "credentials.existingSecret and secrets.provider externalSecrets"),
    ],
    ids=["vault", "vault-no-address", "es-no-store", "es-and-existing-secret"],
)  # fmt: skip
def test_refused_with_the_reason(tmp_path: Path, values: dict[str, object], message: str) -> None:
    out = _template(tmp_path, values, check=False)
    assert message in out, out[-2000:]


def test_external_secrets_render_no_templated_secret(tmp_path: Path) -> None:
    values = {
        "secrets": {"provider": "externalSecrets", "vault": VAULT},
        "gateway": {"keyAuth": {"enabled": True, "consumers": [{"username": "alice"}]}},
    }
    objs = load_stream(_template(tmp_path, values))
    external = {o["metadata"]["name"] for o in objs if o["kind"] == "ExternalSecret"}
    assert external == {"demo-internal-auth", "demo-gateway-config", "demo-gateway-consumers",
                        "demo-grafana-admin"}  # fmt: skip
    for obj in objs:
        if obj["kind"] == "Secret":
            for value in (obj.get("data") or {}).values():
                assert "{{" not in base64.b64decode(value).decode(), obj["metadata"]["name"]
    (store,) = [o for o in objs if o["kind"] == "SecretStore"]
    assert store["spec"]["provider"]["vault"]["server"] == VAULT["address"]
    # The default provider renders Secrets, no ExternalSecret.
    plain = load_stream(_template(tmp_path, {}))
    assert not [o for o in plain if o["kind"] in ("ExternalSecret", "SecretStore")]
