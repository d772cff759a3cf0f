"""Which due requests to claim when there is room for fewer than are due (pure).

Due requests come from the ledger in its index order (by the time they became due),
so one account that queued a burst of 10,000 would fill every free slot until its
burst is through, and a request of any other account would wait behind all of it.
Claims go round-robin across accounts instead, the accounts with the fewest requests
already in flight first: a lone request of a quiet account takes the next free slot
whatever the busy one has queued, and a busy account still gets every slot nobody
else wants. Within an account the ledger's order (oldest first) is kept.

Claimed requests then wait for a slot to be at work (:mod:`services.sender.slots`), and
a freed slot goes the same way: to the account with the fewest at work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def fair_pick(
    due: Sequence[tuple[str, str]], limit: int, in_flight: Mapping[str, int] | None = None
) -> list[str]:
    """Up to ``limit`` request ids out of ``due`` ((request id, account id), oldest
    first): each next one from the account with the fewest in flight (``in_flight``
    counts this process's requests per account) and picked so far; ties go to the
    account whose oldest due request is older."""
    queues: dict[str, list[str]] = {}
    for request_id, account_id in due:
        queues.setdefault(account_id, []).append(request_id)
    load = {account: (in_flight or {}).get(account, 0) for account in queues}
    order = {account: i for i, account in enumerate(queues)}
    heads = dict.fromkeys(queues, 0)
    picked: list[str] = []
    while len(picked) < limit:
        ready = [a for a in queues if heads[a] < len(queues[a])]
        if not ready:
            break
        account = min(ready, key=lambda a: (load[a], order[a]))
        picked.append(queues[account][heads[account]])
        heads[account] += 1
        load[account] += 1
    return picked


def next_turn(waiting: Sequence[str], at_work: Mapping[str, int]) -> int:
    """Which of the requests ``waiting`` for a slot (their accounts, in the order they
    began to wait) gets the one just freed: the one whose account has the fewest at
    work (``at_work``), the longest waiting among those."""
    return min(range(len(waiting)), key=lambda i: (at_work.get(waiting[i], 0), i))
