"""Run every benchmark and record the figures in ``bench/RESULTS.md``.

``python -m bench.run [--messages N] [--out PATH] [--seed S] [--timeout SECONDS]``
(``make bench`` runs it with the defaults); ``--only scale [--accounts N ...]`` runs the
scale benchmark and ``--only dedup-table [--fingerprints N]`` the dedup table's, which
run only when named. Each benchmark owns one ``## `` section of
the results file; a run replaces its own section and leaves the others as they are.
Each section says when, on what machine and with which command its figures were made.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

from bench import (
    dedup,
    dedup_bound,
    dedup_table,
    imap_sync,
    parsers,
    pipeline,
    scale,
    sender,
    writer,
)

BENCHMARKS = {
    "pipeline": pipeline.BENCHMARK,
    "parsers": (parsers.HEADING, parsers.main),
    "dedup": (dedup.HEADING, dedup.main),
    "dedup-bound": (dedup_bound.HEADING, dedup_bound.main),
    "writer": (writer.HEADING, writer.main),
    "sender": (sender.HEADING, sender.main),
    "mbsync": (imap_sync.MBSYNC_HEADING, imap_sync.main_mbsync),
    "idle": (imap_sync.IDLE_HEADING, imap_sync.main_idle),
}
# Run only when named (--only scale): about 15 minutes per --accounts value, and it
# holds thousands of IMAP sessions. Its figures depend on --accounts, not --messages.
SCALED = {"scale": (scale.HEADING, scale.main)}
TITLE = (
    "# mailsync benchmarks\n\n"
    "Written by `make bench` (`python -m bench.run`); one section per benchmark.\n"
)


def nproc() -> str:
    try:
        return subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return str(len(os.sched_getaffinity(0)))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gb() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return "unknown"


def dovecot_version() -> str:
    try:
        done = subprocess.run(["dovecot", "--version"], capture_output=True, text=True, check=True)
        return done.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def command_line(argv: Sequence[str]) -> str:
    """The command as typed from the project root (the interpreter relative to it)."""
    python = Path(sys.executable)
    root = Path(__file__).resolve().parent.parent
    try:
        shown = str(python.relative_to(root))
    except ValueError:
        shown = str(python)
    return f"cd {root} && " + shlex.join([shown, "-m", "bench.run", *argv])


def machine_facts() -> str:
    return (
        f"`nproc` {nproc()} · CPU {cpu_model()} · memory {memory_gb()} · "
        f"Python {platform.python_version()} · {platform.system()} {platform.release()} · "
        f"Dovecot {dovecot_version()}"
    )


# The subsections of a section, each up to the next one or the section's end.
SUBSECTION = re.compile(r"^### .*?(?=^### |\Z)", re.MULTILINE | re.DOTALL)
# What the figures of an earlier setup are kept under: always last.
TANSU = "### Last Tansu figures"
# Said once before the subsections a run keeps, so that none reads as its own.
KEPT_NOTE = "*Kept from earlier runs and rounds, not measured again by the run above:*"


def replace_section(text: str, heading: str, section: str) -> str:
    """``text`` with the ``heading`` section (up to the next ``## ``) replaced or appended.

    Of the old section, the subsections the new one does not write itself stay after it,
    in their order: the notes of earlier rounds, written by hand (an issue's A/B runs, a
    scale run), and ``### Last Tansu figures``, last. A run replaces its figures, never
    that record."""
    if not text.strip():
        text = TITLE
    pattern = re.compile(rf"^{re.escape(heading)}[ \t]*\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    body = section.rstrip("\n") + "\n\n"
    old = pattern.search(text)
    if not old:
        return text.rstrip("\n") + "\n\n" + body.rstrip("\n") + "\n"
    written = {line for line in section.splitlines() if line.startswith("### ")}
    kept = [
        sub.replace(KEPT_NOTE, "").rstrip("\n")
        for sub in SUBSECTION.findall(old.group(0))
        if sub.splitlines()[0] not in written
    ]
    notes = [sub for sub in kept if not sub.startswith(TANSU)]
    if notes:
        body += KEPT_NOTE + "\n\n" + "".join(sub + "\n\n" for sub in notes)
    body += "".join(sub + "\n\n" for sub in kept if sub.startswith(TANSU))
    return pattern.sub(lambda _: body, text, count=1).rstrip("\n") + "\n"


def _terminate(signum: int, frame: FrameType | None) -> None:
    # Unwind normally, so every server's context manager stops it.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--messages", type=int, default=2000, help="messages in the mailbox")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    parser.add_argument("--seed", type=int, default=1, help="corpus seed (deterministic)")
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="stop and report after this many seconds"
    )
    parser.add_argument(
        "--only",
        choices=sorted([*BENCHMARKS, *SCALED, "dedup-table"]),
        action="append",
        help="run only these benchmarks (scale and dedup-table run only when named)",
    )
    parser.add_argument(
        "--fingerprints",
        type=int,
        default=dedup_table.DEFAULT_FINGERPRINTS,
        metavar="N",
        help="dedup-table: the table's records (default: 1,000,000)",
    )
    parser.add_argument(
        "--accounts",
        type=int,
        nargs="+",
        default=list(scale.DEFAULT_ACCOUNTS),
        metavar="N",
        help="scale: the numbers of accounts, each a run of its own (default: 1000 2000)",
    )
    args = parser.parse_args(args_list)
    if args.messages < 1:
        parser.error("--messages must be at least 1")
    if min(args.accounts) < 1:
        parser.error("--accounts must be at least 1")
    signal.signal(signal.SIGTERM, _terminate)

    facts = machine_facts()
    command = command_line(args_list)
    ok = True
    jobs: list[tuple[str, str, Callable[[], tuple[str, bool]]]] = []
    for name, (heading, run) in BENCHMARKS.items():
        jobs.append((name, heading, functools.partial(run, args.messages, args.seed, args.timeout)))
    for name, (heading, scaled) in SCALED.items():
        if args.only and name in args.only:
            jobs.append(
                (name, heading, functools.partial(scaled, args.accounts, args.seed, args.timeout))
            )
    if args.only and "dedup-table" in args.only:
        run_table = functools.partial(dedup_table.main, args.fingerprints, args.seed, args.timeout)
        jobs.append(("dedup-table", dedup_table.HEADING, run_table))
    for name, heading, run_it in jobs:
        if args.only and name not in args.only:
            continue
        started = dt.datetime.now(dt.UTC)
        body, complete = run_it()
        ok &= complete
        section = (
            f"{heading}\n\n"
            f"Run {started:%Y-%m-%d %H:%M} UTC on {facts}.\n\n"
            f"Command: `{command}`\n\n"
            f"{body}"
        )
        out: Path = args.out
        out.parent.mkdir(parents=True, exist_ok=True)
        old = out.read_text() if out.exists() else ""
        out.write_text(replace_section(old, heading, section))
        print(f"\n{section}\n(written to {out})", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
