"""Logging set-up shared by every entry point."""

from __future__ import annotations

import logging


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    # Chatty libraries: their INFO lines are per-rebalance noise at our INFO level.
    for noisy in ("aiokafka", "faust", "mode", "aioimaplib", "pymongo"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
