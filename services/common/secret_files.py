"""Secrets from mounted files: ``MAILSYNC_<NAME>_FILE`` names a file holding ``<NAME>``.

Kubernetes mounts a Secret as files (and Strimzi's KafkaUser secrets are mounted so);
reading the file keeps the secret out of the pod's environment and lets a rotated
Secret reach a restarted pod. Only ``SecretStr`` fields may come from files; a variable
set directly wins over its ``_FILE`` twin. A named file that cannot be read is a
ConfigurationError at start (the pod's Secret is not mounted where it is said to be).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from services.common.errors import ConfigurationError


def _is_secret(field: FieldInfo) -> bool:
    annotation = field.annotation
    return annotation is SecretStr or SecretStr in getattr(annotation, "__args__", ())


class SecretFilesSource(PydanticBaseSettingsSource):
    """A settings source: each ``SecretStr`` field from the file ``MAILSYNC_<NAME>_FILE``."""

    def __init__(self, settings_cls: type[BaseSettings], prefix: str = "MAILSYNC_"):
        super().__init__(settings_cls)
        self._prefix = prefix

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        variable = f"{self._prefix}{field_name.upper()}_FILE"
        path = os.environ.get(variable)
        if path is None or not _is_secret(field):
            return None, field_name, False
        try:
            # A trailing newline is how editors and `kubectl create secret --from-file`
            # end files; it is never part of a password.
            return Path(path).read_text().rstrip("\r\n"), field_name, False
        except OSError as exc:
            raise ConfigurationError(f"{variable}: cannot read {path}: {exc.strerror}") from None

    def __call__(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                out[key] = value
        return out
