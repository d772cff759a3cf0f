"""The Kafka connection settings: half a configuration is refused at start, naming what
to set; secrets come from mounted files; an invalid setting is one line without values."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from services.common.errors import ConfigurationError
from services.common.secret_files import SecretFilesSource
from services.common.settings import CommonSettings, invalid_settings

SCRAM: dict[str, Any] = {
    "kafka_bootstrap": "kafka-bootstrap.kafka:9093",
    "kafka_security_protocol": "SASL_SSL",
    "kafka_sasl_mechanism": "SCRAM-SHA-512",
    "kafka_sasl_username": "mailsync",
    "kafka_sasl_password": "from-the-kafkauser-secret",
}
OAUTH: dict[str, Any] = {
    "kafka_bootstrap": "kafka-bootstrap.kafka:9093",
    "kafka_security_protocol": "SASL_SSL",
    "kafka_sasl_mechanism": "OAUTHBEARER",
    "kafka_oauth_token_url": "https://sso.example.com/token",
    "kafka_oauth_client_id": "mailsync",
    "kafka_oauth_client_secret": "client-secret",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Only what a test sets: no MAILSYNC_* variable of the machine running the tests."""
    for name in [n for n in os.environ if n.startswith("MAILSYNC_")]:
        monkeypatch.delenv(name)
    yield


def refused(**values: Any) -> str:
    with pytest.raises(ValueError) as error:
        CommonSettings(**values)
    return str(error.value)


def without(values: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in names}


def test_complete_configurations_are_accepted() -> None:
    assert CommonSettings().kafka_security_protocol == "PLAINTEXT"
    scram = CommonSettings(**SCRAM)
    assert scram.kafka_tls and scram.kafka_sasl
    assert CommonSettings(**OAUTH).kafka_sasl_mechanism == "OAUTHBEARER"
    mtls = CommonSettings(
        kafka_security_protocol="SSL",
        kafka_cert_file=Path("/etc/kafka-user/user.crt"),
        kafka_key_file=Path("/etc/kafka-user/user.key"),
    )
    assert mtls.kafka_tls and not mtls.kafka_sasl


@pytest.mark.parametrize(
    ("values", "missing"),
    [
        (without(SCRAM, "kafka_sasl_mechanism"), "MAILSYNC_KAFKA_SASL_MECHANISM"),
        (without(SCRAM, "kafka_sasl_username"), "MAILSYNC_KAFKA_SASL_USERNAME"),
        (without(SCRAM, "kafka_sasl_password"), "MAILSYNC_KAFKA_SASL_PASSWORD"),
        (without(OAUTH, "kafka_oauth_token_url"), "MAILSYNC_KAFKA_OAUTH_TOKEN_URL"),
        (without(OAUTH, "kafka_oauth_client_id"), "MAILSYNC_KAFKA_OAUTH_CLIENT_ID"),
        (without(OAUTH, "kafka_oauth_client_secret"), "MAILSYNC_KAFKA_OAUTH_CLIENT_SECRET"),
        (
            {"kafka_security_protocol": "SSL", "kafka_cert_file": Path("user.crt")},
            "both MAILSYNC_KAFKA_CERT_FILE and MAILSYNC_KAFKA_KEY_FILE",
        ),
        (
            {"kafka_cert_file": Path("user.crt"), "kafka_key_file": Path("user.key")},
            "MAILSYNC_KAFKA_SECURITY_PROTOCOL SSL or SASL_SSL",
        ),
        (
            {"kafka_replication_factor": 1, "kafka_min_insync_replicas": 2},
            "MAILSYNC_KAFKA_MIN_INSYNC_REPLICAS",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_half_a_configuration_names_what_is_missing(values: dict[str, Any], missing: str) -> None:
    assert missing in refused(**values)


def test_sasl_plaintext_needs_the_same_as_sasl_ssl() -> None:
    assert "MAILSYNC_KAFKA_SASL_MECHANISM" in refused(kafka_security_protocol="SASL_PLAINTEXT")


def test_an_invalid_setting_is_one_line_without_its_value() -> None:
    with pytest.raises(ValidationError) as half:
        CommonSettings(**without(SCRAM, "kafka_sasl_mechanism"))
    line = invalid_settings(half.value)
    assert line == "Kafka (SASL_SSL) needs MAILSYNC_KAFKA_SASL_MECHANISM"
    assert "from-the-kafkauser-secret" not in line

    with pytest.raises(ValidationError) as wrong:
        CommonSettings(kafka_security_protocol="TLS", kafka_sasl_mechanism="SCRAM")
    line = invalid_settings(wrong.value)
    assert line.startswith("MAILSYNC_KAFKA_SECURITY_PROTOCOL: Input should be 'PLAINTEXT'")
    assert "; MAILSYNC_KAFKA_SASL_MECHANISM: Input should be 'PLAIN'" in line
    assert "\n" not in line


# -- MAILSYNC_<NAME>_FILE ------------------------------------------------------------------


def secret_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "secret"
    path.write_text(text)
    return path


def test_a_secret_comes_from_its_file_without_the_trailing_newline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = secret_file(tmp_path, "s3cret with spaces \n")
    monkeypatch.setenv("MAILSYNC_KAFKA_SASL_PASSWORD_FILE", str(path))
    settings = CommonSettings(**without(SCRAM, "kafka_sasl_password"))
    assert settings.kafka_sasl_password == SecretStr("s3cret with spaces ")
    assert "s3cret" not in repr(settings)


def test_a_variable_set_directly_wins_over_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILSYNC_KAFKA_SASL_PASSWORD_FILE", str(secret_file(tmp_path, "file")))
    monkeypatch.setenv("MAILSYNC_KAFKA_SASL_PASSWORD", "direct")
    settings = CommonSettings(**without(SCRAM, "kafka_sasl_password"))
    assert settings.kafka_sasl_password == SecretStr("direct")
    # An argument (the embedded default's overrides) wins over both.
    given = CommonSettings(**SCRAM)
    assert given.kafka_sasl_password == SecretStr("from-the-kafkauser-secret")


def test_only_secrets_come_from_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILSYNC_KAFKA_SASL_USERNAME_FILE", str(secret_file(tmp_path, "x")))
    source = SecretFilesSource(CommonSettings)
    assert "kafka_sasl_username" not in source()
    assert "MAILSYNC_KAFKA_SASL_USERNAME" in refused(**without(SCRAM, "kafka_sasl_username"))


def test_a_missing_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "not-mounted" / "password"
    monkeypatch.setenv("MAILSYNC_KAFKA_SASL_PASSWORD_FILE", str(missing))
    with pytest.raises(ConfigurationError) as error:
        CommonSettings(**without(SCRAM, "kafka_sasl_password"))
    assert str(error.value) == (
        f"MAILSYNC_KAFKA_SASL_PASSWORD_FILE: cannot read {missing}: No such file or directory"
    )
