"""Apache Kafka's jars, fetched from Maven Central by Maven into a cache of the project.

``python -m devservers.kafka_dist`` (run by ``make deps``) resolves
``devservers/kafka/pom.xml`` (``org.apache.kafka:kafka_2.13`` at one pinned version and
its runtime dependencies) and copies the jars to ``.cache/kafka-<version>/libs``. The
launcher (:mod:`devservers._kafka`) fetches them the same way when they are missing, so
``mailsync run`` outside ``make`` works too. ``MAILSYNC_KAFKA_LIBS`` points elsewhere.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from devservers._process import ServerStartError

KAFKA_VERSION = "4.1.1"  # the same as <kafka.version> in devservers/kafka/pom.xml
HERE = Path(__file__).resolve().parent / "kafka"
POM = HERE / "pom.xml"
LOG4J_CONFIG = HERE / "log4j2.properties"
_DEFAULT_LIBS = HERE.parents[1] / ".cache" / f"kafka-{KAFKA_VERSION}" / "libs"
_COMPLETE = ".complete"


def libs_dir() -> Path:
    """Where the broker's jars are (or will be)."""
    return Path(os.environ.get("MAILSYNC_KAFKA_LIBS", _DEFAULT_LIBS))


def java() -> str:
    """The ``java`` to start the broker with: ``$JAVA_HOME/bin/java``, else the PATH's."""
    home = os.environ.get("JAVA_HOME")
    found = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not found or not Path(found).exists():
        raise ServerStartError(
            "java not found: the Kafka broker needs Java 17+ (`make deps` installs "
            "Debian's default-jre-headless)"
        )
    return found


def ensure_libs() -> Path:
    """The jars' folder, fetching them with Maven first when they are not there."""
    libs = libs_dir()
    if (libs / _COMPLETE).exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ServerStartError(
            f"Kafka {KAFKA_VERSION} is not in {libs} and mvn is not installed: run `make deps`"
        )
    staging = libs.with_name(libs.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    argv = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={staging}",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ServerStartError(
            f"fetching Kafka {KAFKA_VERSION} with Maven failed ({' '.join(argv)}):\n"
            + (done.stdout + done.stderr)[-4000:]
        )
    (staging / _COMPLETE).write_text(KAFKA_VERSION + "\n")
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)  # whole or not at all: a killed fetch leaves only .partial
    return libs


def classpath() -> str:
    return str(ensure_libs() / "*")
