"""The API's static files are in the package (the image installs it, not the checkout),
and the vendored Swagger UI and Redoc are the npm files VENDORED.md names, unchanged."""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "services" / "api" / "static"


def test_every_static_file_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["services"]
    packaged = {p for pattern in patterns for p in (ROOT / "services").glob(pattern)}
    files = {p for p in STATIC.rglob("*") if p.is_file()}
    assert sorted(map(str, files - packaged)) == []


def test_vendored_files_match_their_recorded_checksums() -> None:
    docs = STATIC / "docs"
    listed = dict(
        (name, digest)
        for digest, name in re.findall(
            r"^([0-9a-f]{64})  (\S+)$", (docs / "VENDORED.md").read_text(), re.M
        )
    )
    on_disk = {str(p.relative_to(docs)) for p in docs.rglob("*") if p.is_file()} - {"VENDORED.md"}
    assert set(listed) == on_disk
    for name, digest in listed.items():
        assert hashlib.sha256((docs / name).read_bytes()).hexdigest() == digest, name
