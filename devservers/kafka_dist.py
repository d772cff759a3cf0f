"""``python -m devservers.kafka_dist``: fetch Apache Kafka's jars (``make deps`` runs it)."""

from __future__ import annotations

from devservers._kafka_dist import KAFKA_VERSION, ensure_libs


def main() -> None:
    print(f"Apache Kafka {KAFKA_VERSION}: {ensure_libs()}")


if __name__ == "__main__":
    main()
