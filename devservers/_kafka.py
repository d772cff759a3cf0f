"""Apache Kafka, one KRaft node (broker and controller in one JVM), on loopback.

The data lives in ``<workdir>/kafka``: the storage is formatted on the first start
(``kafka-storage format``, with the SCRAM users of the secure listeners) and kept, so a
restart resumes where the broker stopped. Ports are picked on every start and reused
when still free, so ``mailsync run`` keeps its address across restarts. Readiness is the
broker answering a Metadata request with itself in it; its log is ``kafka.log`` beside
the data; it dies with the process that started it (:class:`ChildProcess`).

Single-node settings: replication factor 1 for the internal topics, no group join
delay (``group.initial.rebalance.delay.ms=0``), session timeouts down to 500 ms for
tests, and no auto-created topics (every topic comes from the registry, as in production).
"""

from __future__ import annotations

import base64
import json
import re
import socket
import struct
import subprocess
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from devservers._kafka_dist import LOG4J_CONFIG, classpath, java
from devservers._process import ChildProcess, ServerStartError, free_port, wait_until
from devservers._tls import CertificateAuthority, SelfSignedCert

MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class SecureListeners:
    """Listeners as production has them, beside the plain one the launcher checks with.

    ``SASL_SSL``: PLAIN, SCRAM-SHA-256/512 (users created at format time) and OAUTHBEARER
    (Kafka's unsecured-JWS validator: the dev token endpoint's tokens pass, for tests of
    the client-credentials flow only). ``MTLS``: TLS requiring a client certificate
    signed by ``ca``.
    """

    ca: CertificateAuthority
    users: Mapping[str, str] = field(default_factory=dict)


def _metadata_request(correlation_id: int) -> bytes:
    # Metadata v0 (api key 3): an empty topic list asks for every topic; the answer
    # starts with the brokers the controller has registered and unfenced.
    client = b"mailsync-devservers"
    body = struct.pack(">hhih", 3, 0, correlation_id, len(client)) + client
    body += struct.pack(">i", 0)
    return struct.pack(">i", len(body)) + body


def metadata_answers(port: int) -> Callable[[], bool]:
    """Readiness: the broker on ``port`` answers Metadata and lists at least one broker."""

    def check() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.settimeout(2)
                sock.sendall(_metadata_request(1))
                head = sock.recv(12, socket.MSG_WAITALL)
                if len(head) < 12:
                    return False
                _size, correlation, brokers = struct.unpack(">iii", head)
                return bool(correlation == 1 and brokers > 0)
        except OSError:
            return False

    return check


def _port(remembered: int | None, taken: set[int]) -> int:
    """The remembered port when nothing listens on it, else a free one; never one of
    ``taken`` (the node's other listeners)."""
    if remembered and remembered not in taken:
        with socket.socket() as sock:
            # As the broker binds (Java sets SO_REUSEADDR): connections of the previous
            # run still in TIME_WAIT do not make the port taken, a listener does.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", remembered))
                taken.add(remembered)
                return remembered
            except OSError:
                pass
    while (port := free_port()) in taken:
        pass
    taken.add(port)
    return port


class KafkaBroker:
    """An Apache Kafka node keeping its data under ``workdir/kafka``."""

    def __init__(
        self,
        workdir: Path,
        *,
        secure: SecureListeners | None = None,
        heap_mb: int = 512,
    ):
        self.dir = workdir / "kafka"
        self.data = self.dir / "data"
        self.secure = secure
        self.heap_mb = heap_mb
        self.log = self.dir / "kafka.log"
        ports = self._remembered_ports()
        taken: set[int] = set()
        self.port = _port(ports.get("plain"), taken)
        self.controller_port = _port(ports.get("controller"), taken)
        self.sasl_ssl_port = _port(ports.get("sasl_ssl"), taken) if secure else None
        self.mtls_port = _port(ports.get("mtls"), taken) if secure else None
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.server_cert: SelfSignedCert | None = None
        self._proc: ChildProcess | None = None

    # -- what a client needs --------------------------------------------------------

    @property
    def sasl_ssl_bootstrap(self) -> str:
        assert self.sasl_ssl_port is not None, "started without secure listeners"
        return f"127.0.0.1:{self.sasl_ssl_port}"

    @property
    def mtls_bootstrap(self) -> str:
        assert self.mtls_port is not None, "started without secure listeners"
        return f"127.0.0.1:{self.mtls_port}"

    # -- lifecycle ------------------------------------------------------------------

    def start(self, timeout: float = 90) -> KafkaBroker:
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.secure is not None:
            self.server_cert = self.secure.ca.issue(self.dir / "tls", "broker")
        properties = self.dir / "server.properties"
        properties.write_text(self._properties())
        if not (self.data / "meta.properties").exists():
            self._format(properties)
        (self.dir / "ports.json").write_text(json.dumps(self._ports()))
        self._proc = ChildProcess(
            "kafka",
            [*self._jvm(), MAIN_CLASS, str(properties)],
            self.dir / "kafka.stdout",
        )
        self._proc.start()
        try:
            wait_until(
                metadata_answers(self.port), timeout=timeout, what="Kafka broker", log=self.log
            )
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop(timeout=30)
            self._proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash would: no controlled shutdown, no flush."""
        if self._proc is not None:
            self._proc.kill()
            self._proc = None

    def batch_codecs(self, topic: str) -> Counter[str]:
        """How the record batches of ``topic`` (every partition) are compressed, as the
        broker stored them: ``compresscodec`` of each batch by Kafka's own
        ``kafka-dump-log`` (``kafka.tools.DumpLogSegments``), counted."""
        partition = re.compile(re.escape(topic) + r"-\d+")
        files = sorted(
            str(f) for f in self.data.glob(f"{topic}-*/*.log") if partition.fullmatch(f.parent.name)
        )
        if not files:
            return Counter()
        tool = [java(), "-cp", classpath(), "kafka.tools.DumpLogSegments", "--files"]
        out = subprocess.run(
            [*tool, ",".join(files)], capture_output=True, text=True, check=True, timeout=120
        ).stdout
        return Counter(m.group(1) for m in re.finditer(r" compresscodec: (\S+) ", out))

    def __enter__(self) -> KafkaBroker:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- configuration --------------------------------------------------------------

    def _remembered_ports(self) -> dict[str, int]:
        try:
            ports: dict[str, int] = json.loads((self.dir / "ports.json").read_text())
            return ports
        except (OSError, ValueError):
            return {}

    def _ports(self) -> dict[str, int]:
        ports = {"plain": self.port, "controller": self.controller_port}
        if self.sasl_ssl_port is not None and self.mtls_port is not None:
            ports |= {"sasl_ssl": self.sasl_ssl_port, "mtls": self.mtls_port}
        return ports

    def _jvm(self) -> list[str]:
        return [
            java(),
            f"-Xms{min(self.heap_mb, 256)}m",
            f"-Xmx{self.heap_mb}m",
            # One core of two is the broker's at most: the serial collector has no
            # background threads competing with the services under test.
            "-XX:+UseSerialGC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            f"-Dkafka.logs.file={self.log}",
            "-cp",
            classpath(),
        ]

    def _properties(self) -> str:
        listeners = {
            "PLAINTEXT": ("PLAINTEXT", self.port),
            "CONTROLLER": ("PLAINTEXT", self.controller_port),
        }
        if self.sasl_ssl_port is not None and self.mtls_port is not None:
            listeners |= {
                "SASL_SSL": ("SASL_SSL", self.sasl_ssl_port),
                "MTLS": ("SSL", self.mtls_port),
            }
        props: dict[str, str | int] = {
            "process.roles": "broker,controller",
            "node.id": 1,
            # A static quorum of one: the voter's port may change from start to start.
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listeners": ",".join(f"{n}://127.0.0.1:{p}" for n, (_, p) in listeners.items()),
            "advertised.listeners": ",".join(
                f"{n}://127.0.0.1:{p}" for n, (_, p) in listeners.items() if n != "CONTROLLER"
            ),
            "listener.security.protocol.map": ",".join(
                f"{n}:{proto}" for n, (proto, _) in listeners.items()
            ),
            "log.dirs": str(self.data),
            "auto.create.topics.enable": "false",
            "num.partitions": 1,
            "offsets.topic.replication.factor": 1,
            # Fewer internal partitions than the default 50: each costs a file set and
            # time at the first group join and first transaction.
            "offsets.topic.num.partitions": 8,
            "transaction.state.log.num.partitions": 8,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "share.coordinator.state.topic.replication.factor": 1,
            "share.coordinator.state.topic.min.isr": 1,
            "group.initial.rebalance.delay.ms": 0,
            "group.min.session.timeout.ms": 500,
            "group.consumer.min.session.timeout.ms": 500,
            "group.consumer.min.heartbeat.interval.ms": 250,
            # Messages above 1 MiB go to the blob store; leave room for a batch of them.
            "message.max.bytes": 16 * 1024 * 1024,
            "replica.fetch.max.bytes": 16 * 1024 * 1024,
            "log.segment.bytes": 64 * 1024 * 1024,
            # Each partition's offset and time indexes are preallocated sparse files of
            # this size, mapped into the broker. The first touch of one faults in a
            # read-around of the disk's readahead (8 MiB on the bench VM) of zeros into
            # the page cache: at 10 MiB (the default) a bench round's new topics added
            # ~350 MB of cache, and once it had grown by some 3 GB the broker's kernel
            # time grew tenfold (bench/RESULTS.md, Dedup, "The third round"). A 64 MiB
            # segment needs at most 16,384 entries (one per 4 KiB of log): 192 KiB of
            # time index, 128 KiB of offset index.
            "log.index.size.max.bytes": 1024 * 1024,
            "num.network.threads": 2,
            "num.io.threads": 4,
            "background.threads": 2,
            "log.cleaner.threads": 1,
            "log.cleaner.dedupe.buffer.size": 8 * 1024 * 1024,
        }
        if self.secure is not None and self.server_cert is not None:
            props |= self._secure_properties(self.secure, self.server_cert)
        return "".join(f"{k}={v}\n" for k, v in props.items())

    @staticmethod
    def _secure_properties(secure: SecureListeners, cert: SelfSignedCert) -> dict[str, str | int]:
        keystore = cert.cert.with_name("broker-keystore.pem")
        # Kafka's PEM keystore (KIP-651): the private key (PKCS#8) and the chain in one file.
        keystore.write_bytes(cert.key.read_bytes() + cert.cert.read_bytes())
        keystore.chmod(0o600)
        plain_users = " ".join(f'user_{u}="{p}"' for u, p in secure.users.items())
        jaas = "org.apache.kafka.common.security"
        return {
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(keystore),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(secure.ca.cert),
            "listener.name.mtls.ssl.client.auth": "required",
            "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER",
            "sasl.mechanism.inter.broker.protocol": "PLAIN",
            "listener.name.sasl_ssl.plain.sasl.jaas.config": (
                f"{jaas}.plain.PlainLoginModule required {plain_users};"
            ),
            "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": (
                f"{jaas}.scram.ScramLoginModule required;"
            ),
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
                f"{jaas}.scram.ScramLoginModule required;"
            ),
            "listener.name.sasl_ssl.oauthbearer.sasl.jaas.config": (
                f"{jaas}.oauthbearer.OAuthBearerLoginModule required;"
            ),
        }

    def _format(self, properties: Path) -> None:
        """``kafka-storage format``: a new cluster id, and the SCRAM users."""
        # "--cluster-id=ID" in one word: an id starting with "-" (base64url may) would be
        # taken for an option.
        cluster = f"--cluster-id={_cluster_id()}"
        argv = [*self._jvm(), STORAGE_TOOL, "format", cluster, "-c", str(properties)]
        for user, password in (self.secure.users if self.secure else {}).items():
            for mechanism in SCRAM_MECHANISMS:
                argv += ["--add-scram", f"{mechanism}=[name={user},password={password}]"]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ServerStartError(
                f"formatting Kafka's storage in {self.data} failed:\n{done.stdout}{done.stderr}"
            )


def _cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
