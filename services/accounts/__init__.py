"""Account records on the compacted accounts topic (the API and CLI of the accounts issue
build on this)."""

from services.accounts.records import publish_account, remove_account

__all__ = ["publish_account", "remove_account"]
