"""The `[oidc]` configuration: a rule naming a role the server does not have is refused with
the server's `config` code; the client secret comes from the environment and never reaches
the TOML file; usernames derived from the provider's claim."""

from __future__ import annotations

from pathlib import Path

import pytest

from federation.webkit.oidc_config import local_username
from hub.config import HubSettings
from hub.errors import HubError
from node.core.config import NodeSettings
from node.core.errors import NodeError

OIDC = {"issuer": "https://idp.example.gov", "client_id": "peernet"}


def test_a_rule_with_a_role_the_server_lacks_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NodeError) as node_err:
        NodeSettings.load(None, node_id="cfg-node", name="N", data_dir=tmp_path,
                          oidc={**OIDC, "rules": [{"group": "g", "role": "operator"}]})
    assert node_err.value.code.value == "config" and node_err.value.field == "oidc"
    with pytest.raises(HubError) as hub_err:
        HubSettings.load(None, hub_id="cfg-hub", name="H", data_dir=tmp_path,
                         oidc={**OIDC, "rules": [{"group": "g", "role": "admin"}]})
    assert hub_err.value.code.value == "config"
    with pytest.raises(NodeError):  # no rules at all
        NodeSettings.load(None, node_id="cfg-node", name="N", data_dir=tmp_path,
                          oidc={**OIDC, "rules": []})
    with pytest.raises(NodeError):  # openid missing from the scopes
        NodeSettings.load(None, node_id="cfg-node", name="N", data_dir=tmp_path,
                          oidc={**OIDC, "scopes": ["profile"],
                                "rules": [{"group": "g", "role": "admin"}]})


def test_the_client_secret_comes_from_the_environment_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "node.toml"
    cfg.write_text('node_id = "cfg-node"\nname = "N"\n\n[oidc]\n'
                   'issuer = "https://idp.example.gov"\nclient_id = "peernet"\n'
                   'rules = [{group = "peers", role = "peer_supporter", team = "north"}]\n',
                   encoding="utf-8")
    monkeypatch.setenv("PEERNET_OIDC_CLIENT_SECRET", "s3cret-from-env")
    s = NodeSettings.load(cfg, data_dir=tmp_path)
    assert s.oidc is not None and s.oidc.rules[0].team == "north"
    assert s.oidc_client_secret is not None
    assert s.oidc_client_secret.get_secret_value() == "s3cret-from-env"
    assert "s3cret" not in s.model_copy(update={"oidc": None}).to_toml()


@pytest.mark.parametrize(("claim", "name"), [
    ("Alice.Smith@fire.example.gov", "alice.smith"), ("bob", "bob"),
    ("Ann Marie", "ann-marie"), ("x", None), ("@example.gov", None), (None, None),
])
def test_usernames_from_the_provider(claim: str | None, name: str | None) -> None:
    assert local_username(claim, 40) == name
