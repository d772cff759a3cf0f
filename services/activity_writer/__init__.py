"""The activity writer: tagged messages to activity documents in MongoDB, once in effect.

- :mod:`.app`             the service: the writer loop, the mailbox events loop, retention
- :mod:`.consumer`        the writer loop: parse, prepare, write, announce, then commit
- :mod:`.durably`         a batch's database steps retried through an outage (backpressure)
- :mod:`.repository`      idempotent writes keyed on the activity id, conflicts linked
- :mod:`.mailbox_events`  flag changes, expunges, renumberings, moves applied to sightings
- :mod:`.erasure`         retention per account and erasure on request (tombstones left)
- :mod:`.queries`         the activity queries the API uses, bounded by visibility
- :mod:`.settings`        ``MAILSYNC_WRITER_*`` | :mod:`.errors` records dead-lettered
- pure: :mod:`.mapping` (message -> activity), :mod:`.parse`, :mod:`.html`,
  :mod:`.attachments`, :mod:`.threads` and :mod:`.batch_threads` (conversations),
  :mod:`.direction`, :mod:`.merge` (canonical sighting), :mod:`.latency`,
  :mod:`.visibility` (who may see what)
"""
