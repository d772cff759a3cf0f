"""Benchmarks on real servers (Apache Kafka, SecantusDB, Dovecot): ``python -m bench.run``.

- :mod:`.run`          runs them and writes each one's section of ``bench/RESULTS.md``
- :mod:`._harness`     what they share: servers, settings, corpus, timed services, rates
- :mod:`.pipeline`     IMAP -> Kafka -> MongoDB end to end, against an imaplib baseline
- :mod:`.fetch_bound`  the fetch stage's best case: its IMAP and Kafka legs at once
- :mod:`.imap_sync`    the fetcher against mbsync, and IDLE latency
- :mod:`.dedup`        one dedup worker, at-least-once and exactly-once
- :mod:`.dedup_bound`  the same hops without faust (reuses :mod:`.dedup`'s run)
- :mod:`.writer`       the activity writer against ``insert_many``
- :mod:`.sender`       the sender against aiosmtplib alone
- :mod:`.parsers`      MIME parsers: speed on realistic mail, robustness on hostile mail
"""
