"""A Strimzi ``KafkaUser`` per service, and each Deployment's login, for the overlays
whose cluster authenticates (prod).

``mailsync deploy users`` writes, into ``deploy/overlays/<overlay>/``:

- ``kafka-users.yaml``: per service, a KafkaUser ``mailsync-<service>`` with SCRAM-SHA-512
  authentication and the ``simple`` authorization of :mod:`schemas.principals` (ACLs
  derived from the topic registry). Strimzi's user operator makes each user's password
  and keeps it in a Secret of the user's name (key ``password``).
- ``kafka-credentials.yaml``: a patch per Deployment: the user's name, its password
  mounted from that Secret and read through ``MAILSYNC_KAFKA_SASL_PASSWORD_FILE`` (never
  in the pod's environment), and the cluster CA from Strimzi's
  ``<cluster>-cluster-ca-cert`` Secret (``MAILSYNC_KAFKA_CA_FILE``).

``--check`` exits 1 when a file no longer matches the registry (a test runs the check).
The overlay's ConfigMap sets the rest: the TLS listener's bootstrap (:data:`BOOTSTRAP`),
``SASL_SSL`` and ``SCRAM-SHA-512``.
"""

from __future__ import annotations

from pathlib import Path

from schemas.principals import PRINCIPALS, Acl, Principal
from schemas.strimzi import API_VERSION, CLUSTER, OVERLAYS, Overlay, q

# Strimzi's listener with TLS and SCRAM-SHA-512 authentication, on its bootstrap Service.
BOOTSTRAP = f"{CLUSTER}-kafka-bootstrap:9093"
SECURITY_PROTOCOL = "SASL_SSL"
SASL_MECHANISM = "SCRAM-SHA-512"
AUTHENTICATION = "scram-sha-512"  # Strimzi's name of the same mechanism
PASSWORD_KEY = "password"  # the key of the user's password in the Secret Strimzi makes
CA_SECRET = f"{CLUSTER}-cluster-ca-cert"
CA_KEY = "ca.crt"
USER_DIR = "/etc/mailsync/kafka-user"
CA_DIR = "/etc/mailsync/kafka-ca"
# Owner and group (fsGroup 10001) may read; the pods run as 10001.
FILE_MODE = 0o440

USERS_HEADER = """\
# Generated from schemas/principals.py and schemas/topics.py by `mailsync deploy users`:
# do not edit by hand. A KafkaUser per service: SCRAM-SHA-512, and ACLs that allow what
# the topic registry says the service produces and consumes, its consumer groups, and
# nothing else. Strimzi's user operator keeps each password in a Secret of the user's
# name (key "password"), which the service's Deployment mounts (kafka-credentials.yaml).
"""

CREDENTIALS_HEADER = """\
# Generated from schemas/principals.py by `mailsync deploy users`: do not edit by hand.
# Each Deployment logs in to Kafka as its KafkaUser (kafka-users.yaml): the user's name,
# its password mounted from the Secret Strimzi keeps it in, and the cluster CA.
"""


def _acl(acl: Acl) -> str:
    return (
        f"      # {acl.why}\n"
        "      - resource:\n"
        f"          type: {acl.resource}\n"
        f"          name: {q(acl.name)}\n"
        f"          patternType: {acl.pattern}\n"
        f"        operations: [{', '.join(acl.operations)}]\n"
    )


def user(principal: Principal, overlay: Overlay) -> str:
    acls = "".join(_acl(a) for a in principal.acls(overlay.topic_prefix))
    return (
        f"apiVersion: {API_VERSION}\n"
        "kind: KafkaUser\n"
        "metadata:\n"
        f"  name: {principal.user}\n"
        "  labels:\n"
        f"    strimzi.io/cluster: {CLUSTER}\n"
        "    app.kubernetes.io/part-of: mailsync\n"
        "  annotations:\n"
        f"    mailsync/service: {q(principal.service)}\n"
        "spec:\n"
        "  authentication:\n"
        f"    type: {AUTHENTICATION}\n"
        "  authorization:\n"
        "    type: simple\n"
        "    acls:\n"
        f"{acls}"
    )


def credentials(principal: Principal) -> str:
    return (
        "apiVersion: apps/v1\n"
        "kind: Deployment\n"
        "metadata:\n"
        f"  name: {principal.user}\n"
        "spec:\n"
        "  template:\n"
        "    spec:\n"
        "      containers:\n"
        f"        - name: {principal.service}\n"
        "          env:\n"
        "            - name: MAILSYNC_KAFKA_SASL_USERNAME\n"
        f"              value: {principal.user}\n"
        "            - name: MAILSYNC_KAFKA_SASL_PASSWORD_FILE\n"
        f"              value: {USER_DIR}/{PASSWORD_KEY}\n"
        "            - name: MAILSYNC_KAFKA_CA_FILE\n"
        f"              value: {CA_DIR}/{CA_KEY}\n"
        "          volumeMounts:\n"
        "            - name: kafka-user\n"
        f"              mountPath: {USER_DIR}\n"
        "              readOnly: true\n"
        "            - name: kafka-ca\n"
        f"              mountPath: {CA_DIR}\n"
        "              readOnly: true\n"
        "      volumes:\n"
        "        - name: kafka-user\n"
        "          secret:\n"
        f"            secretName: {principal.user}\n"
        f"            items: [{{key: {PASSWORD_KEY}, path: {PASSWORD_KEY}}}]\n"
        f"            defaultMode: {FILE_MODE}  # 0{FILE_MODE:o}\n"
        "        - name: kafka-ca\n"
        "          secret:\n"
        f"            secretName: {CA_SECRET}\n"
        f"            items: [{{key: {CA_KEY}, path: {CA_KEY}}}]\n"
        f"            defaultMode: {FILE_MODE}  # 0{FILE_MODE:o}\n"
    )


def render_users(overlay: Overlay) -> str:
    return USERS_HEADER + "".join(f"---\n{user(p, overlay)}" for p in PRINCIPALS.values())


def render_credentials() -> str:
    return CREDENTIALS_HEADER + "".join(f"---\n{credentials(p)}" for p in PRINCIPALS.values())


def rendered() -> dict[Path, str]:
    """Every generated file of the authenticated overlays -> its content."""
    out: dict[Path, str] = {}
    for overlay in OVERLAYS.values():
        if overlay.authenticated:
            out[overlay.dir / "kafka-users.yaml"] = render_users(overlay)
            out[overlay.dir / "kafka-credentials.yaml"] = render_credentials()
    return out


def write() -> list[Path]:
    files = rendered()
    for file, text in files.items():
        file.write_text(text)
    return list(files)


def drift() -> list[Path]:
    """The generated files that are missing or differ from the registry."""
    return [f for f, text in rendered().items() if not f.exists() or f.read_text() != text]
