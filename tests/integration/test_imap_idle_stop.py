"""An account stopped while in IDLE (a rebalance moved it, the replica shuts down) ends
its server session without DONE or LOGOUT (issue #16), and leaves nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
import ssl

import pytest

from schemas.account import Endpoint, Security
from services.imap import ImapSession
from tests.fixtures.pipeline import Env, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def test_a_session_stopped_in_idle_is_closed_and_the_mailbox_opens_again(
    env: Env,
) -> None:
    user = env.mail_user("idlestop")
    assert env.dovecot.cert is not None
    tls = ssl.create_default_context(cafile=str(env.dovecot.cert.cert))
    endpoint = Endpoint(
        host="127.0.0.1", port=env.dovecot.imaps_port, security=Security.TLS, username=user.address
    )

    def sessions() -> int:
        out = env.dovecot.doveadm("who", "-1")
        return sum(1 for line in out.splitlines()[1:] if line.split()[:1] == [user.address])

    async def held(count: int) -> bool:
        return await asyncio.to_thread(sessions) == count

    imap = ImapSession(endpoint, user.password, ssl_context=tls)
    await imap.open()
    (inbox,) = [f for f in await imap.list_folders() if f.name == "INBOX"]
    await imap.examine(inbox)
    idling = asyncio.create_task(imap.idle_until(300))
    await eventually(lambda: held(1), timeout=30, what="the session on the server")
    idling.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await idling
    assert imap.client.has_pending_idle()  # left in IDLE, no DONE sent
    await imap.close()
    assert not imap.connected
    await eventually(lambda: held(0), timeout=30, what="the session gone from the server")

    # The next owner opens the mailbox as usual, and sees what arrives.
    await asyncio.to_thread(env.dovecot.deliver, user.address, b"Subject: after\r\n\r\nhi\r\n")
    async with ImapSession(endpoint, user.password, ssl_context=tls) as again:
        status = await again.examine(inbox)
        assert status.exists == 1
