"""The production image's venv, built as deploy/Dockerfile's builder stage builds it.

No Docker engine runs here: the builder's commands (tests/unit/test_image_recipe.py
checks they are the Dockerfile's) run into a venv in a temp dir, from a copy of what
the Dockerfile copies; then the venv says what it holds. pip reads from its cache, and
from PyPI what the cache lacks (a fresh CI machine: about a minute more).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.test_image_recipe import (
    BUILD,
    COPIED,
    NOT_IN_THE_IMAGE,
    ROOT,
    RUNTIME_LOCK,
    normalize,
    pins,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

_LIST = (
    "import importlib.metadata as m, json; "
    "print(json.dumps(sorted({d.metadata['Name'] for d in m.distributions()})))"
)
# What `python -m venv` itself puts in a 3.11 venv.
_VENV_OWN = {"pip", "setuptools"}


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_runtime_venv_holds_the_services_and_nothing_of_the_demo_or_the_tests(
    tmp_path: Path,
) -> None:
    src, venv, elsewhere = tmp_path / "src", tmp_path / "venv", tmp_path / "cwd"
    elsewhere.mkdir()
    src.mkdir()
    junk = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in COPIED:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=junk)
        else:
            shutil.copy2(ROOT / name, src / name)
    # Nothing of this checkout or its venv leaks in: no PYTHONPATH, no VIRTUAL_ENV.
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    base_python = getattr(sys, "_base_executable", sys.executable)
    for template in BUILD:
        argv = template.format(venv=venv, src=src).split()
        if argv[0] == "python":
            argv[0] = base_python
        done = _run(argv, elsewhere, env)
        assert done.returncode == 0, f"{template}\n{done.stdout}\n{done.stderr}"

    listed = _run([str(venv / "bin/python"), "-c", _LIST], elsewhere, env)
    held = {normalize(n) for n in json.loads(listed.stdout)}
    assert not held & NOT_IN_THE_IMAGE, f"the image would ship {held & NOT_IN_THE_IMAGE}"
    # Exactly the runtime pins and the project (a transitive dev-only dependency, say
    # numpy through SecantusDB, would show up here too).
    assert held - _VENV_OWN == set(pins(RUNTIME_LOCK)) | {"mailsync"}
    assert not list(venv.glob("bin/kubectl*"))

    # The services import with the runtime dependencies alone; the dev servers are absent.
    probe = (
        "import importlib.util, services.fetcher.app, services.dedup.app, "
        "services.activity_writer.app, services.sender.app, services.api.app; "
        "print(importlib.util.find_spec('devservers'))"
    )
    imported = _run([str(venv / "bin/python"), "-c", probe], elsewhere, env)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == "None"

    mailsync = str(venv / "bin/mailsync")
    helped = _run([mailsync, "--help"], elsewhere, env)
    assert helped.returncode == 0, helped.stderr
    for command in ("fetcher", "dedup", "activity-writer", "sender", "api", "run"):
        assert command in helped.stdout
    # `mailsync run` needs the dev servers: one line saying how to get them.
    ran = _run([mailsync, "run"], elsewhere, env)
    assert ran.returncode == 2
    (line,) = ran.stderr.splitlines()
    assert "mailsync[dev]" in line and "devservers" in line, line
