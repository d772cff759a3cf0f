"""Dedup: raw messages to tagged messages, with cross-account duplicates linked.

Two faust agents: ``tag`` reads the raw topic, parses headers once, tags account, alias
and direction, and repartitions by fingerprint; ``dedup`` keeps the sightings table
(changelog-backed) and publishes the verdict.

- :mod:`.app`            the service (start -> run -> cleanup), wiring the rest
- :mod:`.faust_config`   the faust app's configuration, its topics and its table
- :mod:`.agents`         the ``tag`` and ``dedup`` agents
- :mod:`.tagger`         what ``tag`` does with one record (account lookup, blob fetch)
- :mod:`.local_table`    the table's files on disk checked against its changelog at start
- :mod:`.acks`           acking an event once its output is in the broker
- :mod:`.transport`      faust's aiokafka transport, configured as every mailsync client
- :mod:`.stream`         faust's stream for the agents: queued events without a loop pass each
- :mod:`.settings`       ``MAILSYNC_DEDUP_*`` | :mod:`.errors` records dead-lettered
- pure decisions: :mod:`.tagging` (alias, direction), :mod:`.sighting_rules` (canonical
  or duplicate); the header block and a message's identity (its fingerprint and activity
  id) are :mod:`services.mail`'s
"""
