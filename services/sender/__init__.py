"""The sender: outbound send requests over SMTP, each sent once, then filed in Sent.

A request published on ``mailsync.send-requests`` is taken into a MongoDB ledger, sent
over SMTP (classified failures retried with backoff), filed in the account's Sent
folder over IMAP, and its outcome published on ``mailsync.send-results``.

- :mod:`.app`           the service (start -> run -> cleanup)
- :mod:`.intake`        send requests from Kafka into the ledger
- :mod:`.ledger`        the send ledger: what makes a send happen once (leases, states)
- :mod:`.group_commit`  ledger updates of requests in flight, written together
- :mod:`.dispatcher`    one request through its states: accepted -> sending -> sent -> filed
- :mod:`.smtp`          SMTP I/O over aiosmtplib | :mod:`.filing` the copy in Sent (IMAP)
- :mod:`.pool`          connections per account, reused within a burst
- :mod:`.results`       outcomes on ``mailsync.send-results``
- :mod:`.settings`      ``MAILSYNC_SENDER_*`` | :mod:`.errors` what can go wrong
- pure: :mod:`.authorize`, :mod:`.compose` (MIME), :mod:`.smtp_failure` (retry or not),
  :mod:`.sent_folder`, :mod:`.reuse`, :mod:`.resolve` (the user's decision on ``unknown``)
"""
