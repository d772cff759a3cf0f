"""Dedup: raw messages to tagged messages, with cross-account duplicates linked.

Two faust agents (see :mod:`.app`): ``tag`` reads the raw topic, parses headers once,
tags account, alias and direction, and repartitions by fingerprint; ``dedup`` keeps the
fingerprint table (changelog-backed) and publishes the verdict. Decisions are pure:
:mod:`.headers`, :mod:`.tagging`, :mod:`.fingerprint`, :mod:`.sighting_rules`.
"""
