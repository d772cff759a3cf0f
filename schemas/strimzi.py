"""Strimzi ``KafkaTopic`` resources generated from the topic registry, one file per overlay.

``mailsync deploy topics`` writes ``deploy/overlays/<overlay>/kafka-topics.yaml`` with
the overlay's durability from :data:`schemas.topics.DURABILITY` (replicas and
``min.insync.replicas``); ``--check`` exits 1 when a file no longer matches the registry
(a test runs the check), so a topic added or changed in the registry reaches the
cluster through the Strimzi topic operator, not by hand, and no overlay patches a topic.

Not in the registry, so not here: faust's changelog topic of the dedup table
(``<app id>-sightings-changelog``), which faust creates itself at start with
``MAILSYNC_KAFKA_REPLICATION_FACTOR`` and ``MAILSYNC_KAFKA_MIN_INSYNC_REPLICAS``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from schemas.topics import DURABILITY, TOPICS, Durability, TopicSpec

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
# The Kafka cluster resource the topics and users belong to (``strimzi.io/cluster``).
CLUSTER = "mailsync"
API_VERSION = "kafka.strimzi.io/v1beta2"


@dataclass(frozen=True)
class Overlay:
    """A kustomize overlay and the Kafka cluster it deploys to."""

    name: str
    # The cluster authenticates clients (SCRAM-SHA-512) and authorizes them (ACLs):
    # each service gets a KafkaUser (:mod:`schemas.strimzi_users`).
    authenticated: bool
    # MAILSYNC_TOPIC_PREFIX of the overlay's pods (neither overlay sets one).
    topic_prefix: str = ""

    @property
    def durability(self) -> Durability:
        return DURABILITY[self.name]

    @property
    def dir(self) -> Path:
        return DEPLOY / "overlays" / self.name

    @property
    def keda_dir(self) -> Path:
        """The overlay's variant with dedup and the writer scaled on consumer lag by KEDA
        (``deploy/components/keda``): ``<overlay>-keda``. It adds no topics or users."""
        return DEPLOY / "overlays" / f"{self.name}-keda"


OVERLAYS: dict[str, Overlay] = {
    # A one-broker cluster without authentication; the services create missing topics.
    "dev": Overlay("dev", authenticated=False),
    "prod": Overlay("prod", authenticated=True),
}

HEADER = """\
# Generated from schemas/topics.py by `mailsync deploy topics`: do not edit by hand.
# Strimzi's topic operator creates and updates these topics in the Kafka cluster
# labelled below, with this overlay's durability (schemas.topics.DURABILITY["{env}"]).
"""


def q(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text, ensure_ascii=False)


def resource(spec: TopicSpec, overlay: Overlay) -> str:
    name = overlay.topic_prefix + spec.name
    config = spec.config(overlay.durability)
    lines = "".join(f"\n    {k}: {q(v)}" for k, v in sorted(config.items()))
    return (
        f"apiVersion: {API_VERSION}\n"
        "kind: KafkaTopic\n"
        "metadata:\n"
        f"  name: {name}\n"
        "  labels:\n"
        f"    strimzi.io/cluster: {CLUSTER}\n"
        "    app.kubernetes.io/part-of: mailsync\n"
        "  annotations:\n"
        f"    mailsync/description: {q(spec.description)}\n"
        f"    mailsync/producers: {q(', '.join(spec.producers))}\n"
        f"    mailsync/consumers: {q(', '.join(spec.consumers))}\n"
        "spec:\n"
        f"  topicName: {name}\n"
        f"  partitions: {spec.partitions}\n"
        f"  replicas: {overlay.durability.replicas}\n"
        f"  config:{lines}\n"
    )


def render(overlay: Overlay) -> str:
    body = "".join(f"---\n{resource(spec, overlay)}" for spec in TOPICS)
    return HEADER.format(env=overlay.name) + body


def path(overlay: Overlay) -> Path:
    return overlay.dir / "kafka-topics.yaml"


def write() -> list[Path]:
    """Write every overlay's topics file; returns the paths."""
    for overlay in OVERLAYS.values():
        path(overlay).write_text(render(overlay))
    return [path(o) for o in OVERLAYS.values()]


def drift() -> list[Path]:
    """The overlays' topics files that are missing or differ from the registry."""
    return [
        path(o)
        for o in OVERLAYS.values()
        if not path(o).exists() or path(o).read_text() != render(o)
    ]
