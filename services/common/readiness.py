"""Whether a process is ready, from what it knows (pure).

Ready means: every service of the process has started (its clients are open, its
topics exist, its tables are loaded), it is not shutting down, and every dependency
(Kafka, MongoDB) answered its last check. Kubernetes holds a rollout while new pods
are not ready, and a PodDisruptionBudget counts only ready pods.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ReadinessVerdict:
    ready: bool
    body: dict[str, object]


def readiness(
    services: Mapping[str, bool], stopping: bool, dependencies: Mapping[str, str | None]
) -> ReadinessVerdict:
    """``services``: name -> started; ``dependencies``: name -> None if it answered, else why."""
    problems = [f"{name} not started" for name, started in services.items() if not started]
    if stopping:
        problems.append("shutting down")
    problems += [f"{name}: {why}" for name, why in dependencies.items() if why is not None]
    return ReadinessVerdict(
        ready=not problems,
        body={
            "status": "ready" if not problems else "not ready",
            "services": {n: "started" if s else "starting" for n, s in services.items()},
            "dependencies": {n: why or "ok" for n, why in dependencies.items()},
            "problems": problems,
        },
    )
