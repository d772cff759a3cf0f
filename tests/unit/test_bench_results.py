"""bench.run.replace_section: a benchmark's run replaces its figures in bench/RESULTS.md
and keeps the record written by hand under them (issue rounds, earlier setups)."""

from __future__ import annotations

from bench.run import KEPT_NOTE, replace_section

OLD = """# mailsync benchmarks

## Pipeline end to end

Run 2026-12-05.

| old | figures |

### Against its bound, alternating

old generated table

### Issue #19, round 6: what one process can reach

measured by hand

### Last Tansu figures (2026-12-01)

tansu

## Dedup

dedup figures
"""

NEW = """## Pipeline end to end

Run 2026-12-07.

| new | figures |

### Against its bound, alternating

new generated table
"""


def test_a_run_replaces_its_figures_and_keeps_what_was_written_by_hand() -> None:
    text = replace_section(OLD, "## Pipeline end to end", NEW)
    assert "| old | figures |" not in text and "old generated table" not in text
    assert "| new | figures |" in text and "new generated table" in text
    pipeline = text.split("## Dedup")[0]
    # The hand-written round stays, after the new figures and a note saying it is not
    # theirs; the earlier setup's figures stay last; the next section is untouched.
    assert (
        pipeline.index("new generated table")
        < pipeline.index(KEPT_NOTE)
        < pipeline.index("### Issue #19, round 6")
        < pipeline.index("### Last Tansu figures")
    )
    assert text.endswith("## Dedup\n\ndedup figures\n")


def test_a_second_run_keeps_the_same_record_once() -> None:
    once = replace_section(OLD, "## Pipeline end to end", NEW)
    twice = replace_section(once, "## Pipeline end to end", NEW)
    assert twice == once
    assert twice.count("measured by hand") == 1 and twice.count(KEPT_NOTE) == 1
