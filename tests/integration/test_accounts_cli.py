"""``mailsync accounts ...`` from a terminal: the same operations as the API, no HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.pipeline import Env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def cli(env: Env, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services", "accounts", *args],
        input=stdin,
        env=env.environ(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_verify_save_pause_and_remove_from_the_terminal(env: Env, tmp_path: Path) -> None:
    jana = env.mail_user("jana")
    imap = ["--host", "127.0.0.1", "--port", str(env.dovecot.imaps_port), "--security", "tls"]
    verified = cli(
        env, "verify", "--username", jana.address, *imap, "--password-stdin", stdin=jana.password
    )
    assert verified.returncode == 0, verified.stderr
    assert "INBOX" in {f["name"] for f in json.loads(verified.stdout)["imap"]["folders"]}
    wrong = cli(env, "verify", "--username", jana.address, *imap, "--password-stdin", stdin="x")
    assert wrong.returncode == 1 and "auth_failed" in wrong.stderr

    spec = tmp_path / "jana.json"
    spec.write_text(
        json.dumps(
            {
                "account_id": "jana-cli",
                "address": jana.address,
                "ownership": {"kind": "personal", "owner": "u-jana"},
                "imap": {
                    "host": "127.0.0.1",
                    "port": env.dovecot.imaps_port,
                    "username": jana.address,
                },
                "folders": ["INBOX", "Sent"],
            }
        )
    )
    saved = cli(env, "save", str(spec), "--with-password", "--password-stdin", stdin=jana.password)
    assert saved.returncode == 0, saved.stderr
    assert json.loads(saved.stdout)["credentials"] == "password"
    paused = cli(env, "pause", "jana-cli")
    assert json.loads(paused.stdout)["paused"] is True
    shown = json.loads(cli(env, "show", "jana-cli").stdout)
    assert shown["paused"] is True and shown["folders"] == ["INBOX", "Sent"]
    missing = cli(env, "show", "nobody")
    assert missing.returncode == 1 and "not_found" in missing.stderr
    removed = cli(env, "remove", "jana-cli", "--purge")
    assert json.loads(removed.stdout)["account_id"] == "jana-cli"
    assert json.loads(cli(env, "list").stdout) == []
    everything = "".join(
        r.stdout + r.stderr for r in (verified, wrong, saved, paused, missing, removed)
    )
    assert jana.password not in everything


def test_password_stdin_alone_saves_the_password(env: Env, tmp_path: Path) -> None:
    jana = env.mail_user("jana")
    spec = tmp_path / "jana.json"
    spec.write_text(
        json.dumps(
            {
                "account_id": "jana-stdin",
                "address": jana.address,
                "ownership": {"kind": "personal", "owner": "u-jana"},
                "imap": {
                    "host": "127.0.0.1",
                    "port": env.dovecot.imaps_port,
                    "username": jana.address,
                },
            }
        )
    )
    saved = cli(env, "save", str(spec), "--password-stdin", stdin=jana.password)
    assert saved.returncode == 0, saved.stderr
    assert json.loads(saved.stdout)["credentials"] == "password"
