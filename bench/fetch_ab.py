"""The fetch stage, alternating two versions of the code against the same servers.

    python -m bench.fetch_ab A=/work/main,B=/work/wt-branch ROUNDS [--messages N]

Each version is a worktree of this repository. The servers start once and the pipeline's
mailbox is seeded once; then each round measures the bound (``bench.fetch_bound``, this
tree's code) and runs the fetcher alone (``bench._harness.fetcher_alone``) once per
version, each in a child process whose imports come from its worktree, on topics and a
database of its own, the order reversed every other round. A child prints one JSON line:
its import's seconds (and its transfer's: ``FetchRun.transfer_s``), the time to its first
cursor, the CPU its process used from ``start()`` to the last cursor, and its peak RSS
(``VmHWM``, which includes the probe's read of raw-messages at the end: with small
messages inline, that read is the peak). Figures are
noisy on a shared machine (bench/RESULTS.md): compare versions by their pairs, not by
one run each; the run second in a round was often the faster.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

from pydantic import SecretStr

RESULT = "RESULT "
SETTLE_S = 2.0  # between runs: the broker's log flushes and GC of the run before


def _child() -> None:
    """One fetcher-alone run with the code on PYTHONPATH; settings from the parent."""
    from bench import _harness as harness

    overrides = json.loads(os.environ["FETCH_AB_OVERRIDES"])
    last_uid = int(os.environ["FETCH_AB_LAST_UID"])
    dovecot: Any = types.SimpleNamespace(imaps_port=int(os.environ["FETCH_AB_PORT"]))
    cpu: dict[str, float] = {}
    # The CPU from the first poll of the cursor to the one that saw the last: the
    # probe's method is wrapped (fetched_cursor, or fetched_uid in trees before it).
    name = "fetched_cursor" if hasattr(harness.Probe, "fetched_cursor") else "fetched_uid"
    polled = getattr(harness.Probe, name)

    def used() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    async def timed(probe: Any) -> Any:
        cpu.setdefault("start", used())
        got = await polled(probe)
        if (got[0] if isinstance(got, tuple) else got) >= last_uid:
            cpu.setdefault("end", used())
        return got

    setattr(harness.Probe, name, timed)
    run = asyncio.run(harness.fetcher_alone(overrides, dovecot, last_uid, 300))
    out = {
        "seconds": run.fetch_s,
        "transfer_s": run.transfer_s,
        "from_fetch_s": getattr(run, "from_fetch_s", None),
        "first_s": run.first_s,
        "cpu_s": cpu.get("end", 0.0) - cpu.get("start", 0.0),
        "peak_rss_mb": _peak_rss_mb(),
        "records": run.records,
        "error": run.error,
    }
    print(RESULT + json.dumps(out), flush=True)


def _peak_rss_mb() -> float:
    """This process's own peak RSS. Not ``ru_maxrss``: Linux carries that over ``execve``
    from the forking parent, which holds the corpus, so it showed the parent's peak."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _run(name: str, tree: str, overrides: dict[str, Any], last_uid: int, port: int) -> Any:
    env = dict(
        os.environ,
        PYTHONPATH=tree,
        FETCH_AB_OVERRIDES=json.dumps(
            {
                k: v.get_secret_value() if isinstance(v, SecretStr) else str(v)
                for k, v in overrides.items()
            }
        ),
        FETCH_AB_LAST_UID=str(last_uid),
        FETCH_AB_PORT=str(port),
    )
    done = subprocess.run(
        [sys.executable, __file__, "--child"], env=env, cwd=tree, capture_output=True, text=True
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
    if not lines:
        raise RuntimeError(f"{name} printed no result:\n{done.stderr[-2000:]}")
    return json.loads(lines[0][len(RESULT) :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("versions", help="NAME=WORKTREE,NAME=WORKTREE")
    parser.add_argument("rounds", type=int)
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()

    from bench._harness import USER, build_corpus, overrides_for, quiesce, seed_mailbox, servers
    from bench.fetch_bound import measure

    versions = [tuple(v.split("=", 1)) for v in args.versions.split(",")]
    # Per version: the cold ratio (start() to the last cursor, against both legs in two
    # processes); the span's (its first UID FETCH to the last cursor, as the bound times
    # its legs; trees before it: none); and the transfer's (first record to the last
    # cursor) against both the two-process bound and one process (bench.fetch_bound's
    # docstring).
    ratios: dict[str, dict[str, list[float]]] = {
        name: {"cold": [], "span": [], "transfer": [], "one process": []} for name, _ in versions
    }
    corpus = build_corpus(args.messages, 1)
    with tempfile.TemporaryDirectory() as tmp, servers(Path(tmp)) as (kafka, secantus, dovecot):
        dovecot.add_user(USER.address, USER.password)
        seed_mailbox(dovecot, USER, corpus.messages)
        base = overrides_for(kafka, secantus, Path(tmp) / "data", dovecot)
        last_uid = int(dovecot.status(USER.address, "INBOX")["uidnext"]) - 1
        k = 0
        for r in range(args.rounds):
            bound = measure(dovecot, USER, base, corpus)
            if bound.error:
                raise RuntimeError(f"the bound failed: {bound.error}")
            row = [f"round {r}: bound {bound.together_s:.3f} s, one process"]
            row[0] += f" {bound.one_process_s:.3f} s (CPU {bound.one_process_cpu_s:.2f} s)"
            for name, tree in versions if r % 2 == 0 else versions[::-1]:
                k += 1
                time.sleep(SETTLE_S)
                quiesce()
                own = dict(base, mongo_database=f"ab{k}", topic_prefix=f"ab{k}.")
                own["fetcher_group"] = f"ab{k}"
                got = _run(name, tree, own, last_uid, dovecot.imaps_port)
                mine = ratios[name]
                mine["cold"].append(bound.together_s / got["seconds"])
                span = got.get("from_fetch_s")
                if span:
                    mine["span"].append(bound.together_s / span)
                transfer = got.get("transfer_s") or got["seconds"]
                mine["transfer"].append(bound.together_s / transfer)
                mine["one process"].append(bound.one_process_s / transfer)
                row.append(
                    f"{name} {got['seconds']:.3f} s ({mine['cold'][-1]:.2f}),"
                    + (f" from its FETCH {span:.3f} s ({mine['span'][-1]:.2f})," if span else "")
                    + " transfer"
                    f" {transfer:.3f} s ({mine['transfer'][-1]:.2f}; one process"
                    f" {mine['one process'][-1]:.2f}); first cursor {got['first_s']:.3f} s;"
                    f" CPU {got['cpu_s']:.2f} s; peak RSS {got['peak_rss_mb']:.0f} MB;"
                    f" {got['records']} records"
                )
            print(" | ".join(row), flush=True)
    for name, kinds in ratios.items():
        print(
            f"{name}: medians over {len(kinds['cold'])} runs: "
            + ", ".join(f"{kind} {statistics.median(v):.3f}" for kind, v in kinds.items() if v)
        )


if __name__ == "__main__":
    if sys.argv[1:] == ["--child"]:
        _child()
    else:
        main()
