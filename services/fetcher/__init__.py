"""The fetcher: IMAP folders to the raw-messages topic, once in effect, never touching read state.

- :mod:`.app`        the service (start -> run -> cleanup)
- :mod:`.assigned_accounts`  the accounts topic, read as a table, split across replicas by partition
- :mod:`.supervisor` one task per account, each with its own backoff
- :mod:`.worker`     what one account's task does: connect, sync folders, IDLE
- IMAP I/O (session, commands, parsers, errors) is :mod:`services.imap`
- :mod:`.publish`    Kafka with acks=all, the blob store for large messages
- :mod:`.cursor`, :mod:`.state`, :mod:`.reconcile_requests`  what is kept in MongoDB
- :mod:`.stored_sightings`  what became activities (read-only), for revalidation and reconcile
- pure decisions: :mod:`.sync`, :mod:`.classify`, :mod:`.revalidate` (UIDVALIDITY
  changes), :mod:`.reconcile` (gaps, flags)
"""
