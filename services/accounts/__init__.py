"""Account records: published on the compacted accounts topic (the API and CLI of the
accounts issue build on this), and rotated OAuth2 refresh tokens written back."""

from services.accounts.records import publish_account, remove_account
from services.accounts.rotation import RotatedSecretWriter

__all__ = ["RotatedSecretWriter", "publish_account", "remove_account"]
