"""The fetcher: IMAP folders to the raw-messages topic, once in effect, never touching read state.

- :mod:`.app`        the service (start -> run -> cleanup)
- :mod:`.assigned_accounts`  the accounts topic, read as a table, split across replicas by partition
- :mod:`.supervisor` one task per account, each with its own backoff
- :mod:`.worker`     what one account's task does, composed of:

  - :mod:`.schedule`           connections, IDLE, polls, housekeeping: what runs when
  - :mod:`.folder_pass`        one folder's pass: select, revalidate, new mail, events, cursor
  - :mod:`.revalidate_pass`    a UIDVALIDITY change: remap or resync
  - :mod:`.new_mail`           new mail fetched and published in batches, pipelined
  - :mod:`.processed_actions`  processed mail moved, marked or left
  - :mod:`.reconcile_pass`     published UIDs against MongoDB; gaps published again
  - :mod:`.account_cursors`    the account's cursors: every write, its settle mark, the locks

- IMAP I/O (session, commands, parsers, errors) is :mod:`services.imap`
- :mod:`.publish`    Kafka with acks=all, the blob store for large messages
- :mod:`.cursor`, :mod:`.state`, :mod:`.reconcile_requests`  what is kept in MongoDB
- :mod:`.due_work`   reconcile requests and waiting processed mail, read for all the
  replica's accounts at once; wakes the accounts they are for
- :mod:`.login_pacer`  logins per IMAP server host paced (a reconnect storm spread)
- :mod:`.confirmations`, :mod:`.processed`  confirmed activities, queued for the
  processed-mail action
- :mod:`.stored_sightings`  what became activities (read-only), for revalidation and reconcile
- :mod:`.assignment`, :mod:`.membership`  accounts split across replicas
- pure decisions: :mod:`.sync`, :mod:`.cursor_rules` (how a cursor moves),
  :mod:`.classify`, :mod:`.revalidate` (UIDVALIDITY changes), :mod:`.reconcile` (gaps,
  flags, settle marks)
"""
