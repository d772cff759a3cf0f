"""Strimzi ``KafkaTopic`` resources generated from the topic registry.

``mailsync deploy topics`` writes ``deploy/base/kafka-topics.yaml``; ``--check`` exits 1
when that file no longer matches :data:`schemas.topics.TOPICS` (a test runs the check),
so a topic added or changed in the registry reaches the cluster through the Strimzi
topic operator, not by hand. The overlays patch replicas and ``min.insync.replicas``.

Not in the registry, so not here: faust's changelog topic of the dedup table
(``<app id>-sightings-changelog``), which faust creates itself at start.
"""

from __future__ import annotations

import json
from pathlib import Path

from schemas.topics import TOPICS, TopicSpec

TOPICS_YAML = Path(__file__).resolve().parents[1] / "deploy" / "base" / "kafka-topics.yaml"
# The Kafka cluster resource the topics belong to (Strimzi's ``strimzi.io/cluster``).
CLUSTER = "mailsync"
REPLICAS = 3

HEADER = """\
# Generated from schemas/topics.py by `mailsync deploy topics`: do not edit by hand.
# Strimzi's topic operator creates and updates these topics in the Kafka cluster
# labelled below; overlays patch replicas and min.insync.replicas.
"""


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text, ensure_ascii=False)


def resource(spec: TopicSpec) -> str:
    config = "".join(f"\n    {k}: {_q(v)}" for k, v in sorted(spec.config().items()))
    return (
        "apiVersion: kafka.strimzi.io/v1beta2\n"
        "kind: KafkaTopic\n"
        "metadata:\n"
        f"  name: {spec.name}\n"
        "  labels:\n"
        f"    strimzi.io/cluster: {CLUSTER}\n"
        "    app.kubernetes.io/part-of: mailsync\n"
        "  annotations:\n"
        f"    mailsync/description: {_q(spec.description)}\n"
        f"    mailsync/producers: {_q(', '.join(spec.producers))}\n"
        f"    mailsync/consumers: {_q(', '.join(spec.consumers))}\n"
        "spec:\n"
        f"  topicName: {spec.name}\n"
        f"  partitions: {spec.partitions}\n"
        f"  replicas: {REPLICAS}\n"
        f"  config:{config}\n"
    )


def render() -> str:
    return HEADER + "".join(f"---\n{resource(spec)}" for spec in TOPICS)


def write(path: Path = TOPICS_YAML) -> Path:
    path.write_text(render())
    return path


def drift(path: Path = TOPICS_YAML) -> bool:
    """True when the file differs from what the registry renders."""
    return not path.exists() or path.read_text() != render()
