"""The activity writer: tagged messages to activity documents in MongoDB, once in effect.

- :mod:`.mapping`    message -> activity document (pure)
- :mod:`.repository` idempotent bulk upserts keyed on the activity id
- :mod:`.consumer`   batches, writes, and commits offsets only after the write is durable
"""
