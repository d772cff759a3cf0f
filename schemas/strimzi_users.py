"""A Strimzi ``KafkaUser`` per service, and each workload's login, for the overlays
whose cluster authenticates (prod).

``mailsync deploy users`` writes, into ``deploy/overlays/<overlay>/``:

- ``kafka-users.yaml``: per service, a KafkaUser ``mailsync-<service>`` with SCRAM-SHA-512
  authentication and the ``simple`` authorization of :mod:`schemas.principals` (ACLs
  derived from the topic registry). Strimzi's user operator makes each user's password
  and keeps it in a Secret of the user's name (key ``password``).
- ``kafka-credentials.yaml``: a patch per workload (a Deployment, dedup's StatefulSet:
  ``Principal.workload``): the user's name, its password
  mounted from that Secret and read through ``MAILSYNC_KAFKA_SASL_PASSWORD_FILE`` (never
  in the pod's environment), and the cluster CA from Strimzi's
  ``<cluster>-cluster-ca-cert`` Secret (``MAILSYNC_KAFKA_CA_FILE``).

and into the overlay's KEDA variant ``deploy/overlays/<overlay>-keda/`` (the overlay plus
``deploy/components/keda``, whose ScaledObjects scale :data:`KEDA_SCALED` on their lag):

- ``keda-auth.yaml``: per scaled service, KEDA's login to Kafka as the service's own
  KafkaUser (Read on its group and topic implies the Describe KEDA's OffsetFetch and
  ListOffsets need): a Secret ``mailsync-<service>-keda`` with what is not secret
  (username, ``sasl``, ``tls``: KEDA reads a TriggerAuthentication's parameters only
  from Secrets), and a TriggerAuthentication ``mailsync-<service>-kafka`` taking those,
  the password from the user's Secret and the CA from the cluster CA's. The overlay's
  kustomization points each ScaledObject's trigger at it (``authenticationRef``) and at
  the TLS listener.

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

# The services deploy/components/keda scales on consumer lag (its ScaledObjects, named
# like the workloads; a test checks).
KEDA_SCALED = ("dedup", "activity-writer")
KEDA_API_VERSION = "keda.sh/v1alpha1"
# KEDA's Kafka scaler's names (TriggerAuthentication parameters) for SCRAM-SHA-512 and TLS.
KEDA_SASL = "scram_sha512"
KEDA_TLS = "enable"

USERS_HEADER = """\
# Generated from schemas/principals.py and schemas/topics.py by `mailsync deploy users`:
# do not edit by hand. A KafkaUser per service: SCRAM-SHA-512, and ACLs that allow what
# the topic registry says the service produces and consumes, its consumer groups, and
# nothing else. Strimzi's user operator keeps each password in a Secret of the user's
# name (key "password"), which the service's workload mounts (kafka-credentials.yaml).
"""

CREDENTIALS_HEADER = """\
# Generated from schemas/principals.py by `mailsync deploy users`: do not edit by hand.
# Each workload logs in to Kafka as its KafkaUser (kafka-users.yaml): the user's name,
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
        f"kind: {principal.workload}\n"
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


KEDA_AUTH_HEADER = """\
# Generated from schemas/principals.py by `mailsync deploy users`: do not edit by hand.
# KEDA's Kafka scaler logs in as the KafkaUser of the service it scales (kafka-users.yaml
# of the overlay this one builds on): SCRAM-SHA-512 over TLS, the password from the Secret
# Strimzi's user operator keeps it in, the cluster CA from Strimzi's Secret. KEDA reads
# a parameter only from a Secret, hence one per service for its username, sasl and tls.
"""


def keda_secret(principal: Principal) -> str:
    """The Secret with the non-secret parameters of KEDA's login as ``principal``."""
    return f"{principal.user}-keda"


def keda_auth(principal: Principal) -> str:
    """The TriggerAuthentication of the ScaledObject scaling ``principal``'s service."""
    return f"{principal.user}-kafka"


def _target(parameter: str, secret: str, key: str) -> str:
    return f"    - parameter: {parameter}\n      name: {secret}\n      key: {q(key)}\n"


def keda_login(principal: Principal) -> str:
    labels = (
        "  labels:\n"
        "    app.kubernetes.io/part-of: mailsync\n"
        f"    app.kubernetes.io/component: {principal.service}\n"
    )
    return (
        "apiVersion: v1\n"
        "kind: Secret\n"
        "metadata:\n"
        f"  name: {keda_secret(principal)}\n"
        f"{labels}"
        "type: Opaque\n"
        "stringData:\n"
        f"  username: {principal.user}\n"
        f"  sasl: {KEDA_SASL}\n"
        f"  tls: {KEDA_TLS}\n"
        "---\n"
        f"apiVersion: {KEDA_API_VERSION}\n"
        "kind: TriggerAuthentication\n"
        "metadata:\n"
        f"  name: {keda_auth(principal)}\n"
        f"{labels}"
        "spec:\n"
        "  secretTargetRef:\n"
        + _target("sasl", keda_secret(principal), "sasl")
        + _target("username", keda_secret(principal), "username")
        + "    # made by Strimzi's user operator for the KafkaUser\n"
        + _target("password", principal.user, PASSWORD_KEY)
        + _target("tls", keda_secret(principal), "tls")
        + "    # made by Strimzi's cluster operator\n"
        + _target("ca", CA_SECRET, CA_KEY)
    )


def render_keda_auth() -> str:
    return KEDA_AUTH_HEADER + "".join(f"---\n{keda_login(PRINCIPALS[s])}" for s in KEDA_SCALED)


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
            out[overlay.keda_dir / "keda-auth.yaml"] = render_keda_auth()
    return out


def write() -> list[Path]:
    files = rendered()
    for file, text in files.items():
        file.write_text(text)
    return list(files)


def drift() -> list[Path]:
    """The generated files that are missing or differ from the registry."""
    return [f for f, text in rendered().items() if not f.exists() or f.read_text() != text]
