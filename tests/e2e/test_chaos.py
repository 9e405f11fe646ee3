"""``make chaos``, short: the pipeline on the local cloud under injected faults loses nothing, repeats no
completion and leaves no job stuck (the whole table: ``make chaos``, quoted in the README)."""

from __future__ import annotations

from tests.e2e.conftest import batchrecs


def test_the_short_chaos_table_is_all_zeros() -> None:
    result = batchrecs("chaos", "--short", timeout=600)
    assert result.code == 0, result.stdout + result.stderr[-3000:]
    rows = [
        line for line in result.stdout.splitlines()[2:] if line.strip() and not line.startswith("8 scenarios")
    ]
    assert len(rows) == 8
    assert result.stdout.rstrip().endswith(
        "8 scenarios: 0 lost, 0 duplicates, 0 stuck, 0 opt-outs overridden"
    )
    # the opt-out made during the SES import was overwritten by it and put back from the ledger
    assert "1 opt-out put back from the preference ledger" in result.stdout
    # every fault was actually met (a fault never injected would prove nothing)
    assert "never met" not in result.stdout
