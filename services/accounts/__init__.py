"""Account records and what outlives an account's mail: shared by the API, the CLI,
the fetcher and the activity writer.

- :mod:`.records`          publishing account records on the compacted accounts topic
- :mod:`.restore`          what the accounts topic lacks, published again from MongoDB
- :mod:`.rotation`         rotated OAuth2 refresh tokens written back
- :mod:`.removed`          accounts removed through the API (``removed_accounts``)
- :mod:`.tombstones`       tombstones of erased and expired mail, in MongoDB
- :mod:`.tombstone_rules`  which tombstones to leave, which sightings they stop (pure)
"""

from services.accounts.records import publish_account, remove_account
from services.accounts.rotation import RotatedSecretWriter

__all__ = ["RotatedSecretWriter", "publish_account", "remove_account"]
