"""Key files are useless without the passphrase, and no secret or record content reaches a log.

- Key files (node signing/encryption keys, the pseudonym key, the hub's keys, board keys)
  made by the real CLI: owner-only permissions; the private key bytes appear nowhere in the
  file in any encoding (raw, base64url, base64, hex); the wrong passphrase opens nothing
  (`wrong_passphrase`), and `peernet node serve` with it exits 1 with one line, no traceback.
- Logs: a node app runs login (right and wrong passwords), encounter writes with typed
  pseudonym inputs (also refused ones), a disclosure, API tokens, with every logger at DEBUG
  captured, plus the CLI's own output; none of the typed inputs, passwords, passphrases,
  tokens or key bytes appears in any log line or any error body.
"""

from __future__ import annotations

import base64
import logging
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bench.reliability_report import record
from federation.keystore import KeystoreError, NodeKeys
from node.core.pseudonym import load_key_file
from protocol.encoding import b64u
from tests.chaos.cluster import LAUNCH, ROOT, child_env, invoke
from tests.security.conftest import PASSWORD, MakeApp, login

PASSPHRASE = "unusual passphrase 7f3a9c"
SECRET_EMPLOYEE = "EMP-SECRET-770231"
SECRET_WRONG_PW = "typo-password-qz81"


def _encodings(raw: bytes) -> list[bytes]:
    return [raw, b64u(raw).encode(), base64.b64encode(raw), raw.hex().encode(),
            base64.b64encode(raw).rstrip(b"=")]


def test_key_files_need_the_passphrase(tmp_path: Path) -> None:
    env = {"PEERNET_PASSPHRASE": PASSPHRASE, "PEERNET_BOARD_PASSPHRASE": PASSPHRASE,
           "PEERNET_HUB_PASSPHRASE": PASSPHRASE}
    cfg = tmp_path / "node.toml"
    out = invoke(["node", "init", "--config", str(cfg), "--node-id", "key-test", "--name", "K",
                  "--data-dir", str(tmp_path / "n"), "--password-stdin"], env,
                 stdin=PASSWORD + "\n")
    invoke(["board", "init", "--dir", str(tmp_path / "board"), "--keys", "2", "--threshold",
            "1"], env)
    invoke(["hub", "init", "--config", str(tmp_path / "hub.toml"), "--hub-id", "key-hub",
            "--name", "H", "--data-dir", str(tmp_path / "h"), "--public-url",
            "http://127.0.0.1:1", "--board", str(tmp_path / "board" / "board.json")], env)
    node_key, pseudo_key = tmp_path / "n" / "node.key", tmp_path / "n" / "pseudonym.key"
    hub_key = tmp_path / "h" / "hub.key"
    board_keys = sorted((tmp_path / "board" / "keys").glob("*.json"))
    files = [node_key, pseudo_key, hub_key, *board_keys]
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) & 0o077 == 0, (f, oct(f.stat().st_mode))
    keys = NodeKeys.load(node_key, PASSPHRASE)
    hub = NodeKeys.load(hub_key, PASSPHRASE)
    secrets_raw = [bytes(keys.signing_key), bytes(keys.enc_key), bytes(hub.signing_key),
                   bytes(hub.enc_key), load_key_file(pseudo_key, PASSPHRASE)._key]
    blobs = b"".join(f.read_bytes() for f in files)
    for raw in secrets_raw:
        for enc in _encodings(raw):
            assert enc not in blobs
            assert enc.decode("latin-1") not in out
    assert PASSPHRASE.encode() not in blobs
    for f in (node_key, hub_key):
        with pytest.raises(KeystoreError) as err:
            NodeKeys.load(f, PASSPHRASE + "x")
        assert err.value.code == "wrong_passphrase"
    with pytest.raises(KeystoreError):
        load_key_file(pseudo_key, "")
    # the server refuses to start with the wrong passphrase: one line, no traceback
    res = subprocess.run(
        [sys.executable, "-c", LAUNCH, "node", "serve", "--config", str(cfg), "--port", "1"],
        env=child_env({"PEERNET_PASSPHRASE": "not the passphrase"}), cwd=ROOT,
        capture_output=True, timeout=120, check=False)
    err_text = res.stderr.decode()
    assert res.returncode == 1 and "Traceback" not in err_text, err_text
    assert err_text.strip().count("\n") == 0 and err_text.startswith("Error: "), err_text
    record("security-key-files", area="security",
           case="key files not readable without the passphrase",
           how="node, pseudonym, hub and board key files made by `peernet ... init`: mode "
               "bits, the private bytes searched in 5 encodings, wrong passphrases, "
               "`peernet node serve` with a wrong passphrase",
           result="owner-only files; no private byte sequence in any file; wrong_passphrase; "
                  "serve exits 1 with one line",
           figures={"files": len(files), "secrets_searched": len(secrets_raw) * 5})


async def test_no_secret_or_record_content_in_logs(node_app: MakeApp,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    logging.getLogger("aiohttp.access").setLevel(logging.DEBUG)
    node = await node_app()
    c = node.client
    bodies: list[str] = []
    base = {"occurred_at": "2026-06-15T11:30:00Z", "duration_bucket": "15-30m",
            "activation_type": "self", "intervention": "one_on_one",
            "recipient_discipline": "fire", "recipient_category": "own_agency",
            "recipient": SECRET_EMPLOYEE, "topics": ["work_stress"], "notice_given": True}
    coord = node.bearer("coord")
    r = await c.post("/api/v1/encounters", json=base, headers=coord)
    assert r.status == 201
    bodies.append(await r.text())
    # refused inputs that carry the typed value must not echo it either
    for bad in ({**base, "duration_bucket": SECRET_EMPLOYEE},
                {**base, "note": SECRET_EMPLOYEE},
                {**base, "recipient": SECRET_EMPLOYEE * 40},
                {**base, "incident_ref": SECRET_EMPLOYEE + " <script>"}):
        r = await c.post("/api/v1/encounters", json=bad, headers=coord)
        assert r.status in (201, 422), r.status
        bodies.append(await r.text())
    r = await c.post("/api/v1/encounters", data=f"{{\"recipient\": \"{SECRET_EMPLOYEE}\"",
                     headers={**coord, "Content-Type": "application/json"})
    bodies.append(await r.text())
    # logins: a wrong password then the right one, through the form
    r = await login(c, "coord", SECRET_WRONG_PW)
    bodies.append(await r.text())
    r = await login(c, "coord")
    assert r.status == 303
    r = await c.get("/encounters")
    bodies.append(await r.text())
    # a token made through the API (printed once to its caller only)
    r = await c.post("/api/v1/tokens", json={"label": "script"}, headers=coord)
    new_token = (await r.json())["token"]
    log_text = "\n".join(f"{rec.name} {rec.getMessage()} {rec.exc_text or ''}"
                         for rec in caplog.records)
    error_bodies = "\n".join(b for b in bodies)
    secrets_all = [SECRET_EMPLOYEE, SECRET_WRONG_PW, PASSWORD, new_token,
                   *node.tokens.values()]
    for s in secrets_all:
        assert s not in log_text, s[:6]
    for s in (SECRET_EMPLOYEE, SECRET_WRONG_PW, PASSWORD):
        assert s not in error_bodies, s
    record("security-logs-inproc", area="security",
           case="no secret or record content in logs (in-process, DEBUG)",
           how="node app with every logger at DEBUG: encounters with a typed employee number "
               "(accepted and 5 refused variants), wrong and right logins, API tokens; all "
               "log records and error bodies searched",
           result="no typed input, password or token in any log record or error body",
           figures={"log_records": len(caplog.records), "secrets": len(secrets_all),
                    "responses_checked": len(bodies)})

