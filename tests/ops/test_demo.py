"""`polyoms demo --quick` (and with `--faults`) runs to a passing reconciliation; the verdict logic."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from polyoms.algos.base import ParentState
from polyoms.cli.main import app
from polyoms.core.units import MICRO
from polyoms.oms.journal_recovery import recover
from polyoms.oms.state import TERMINAL, OrderState
from polyoms.ops.demo import DemoReport, ReconRow


def _run(tmp_path: Path, *flags: str) -> str:
    result = CliRunner().invoke(
        app, ["demo", "--quick", "--no-live", "--seed", "11", "--state-dir", str(tmp_path), *flags]
    )
    out = result.output
    assert result.exit_code == 0, out
    assert "reconciliation holds" in out
    return out


def _row(out: str, label: str) -> list[str]:
    line = next(line for line in out.splitlines() if label in line)
    return [c.strip() for c in line.split("│") if c.strip()]


def test_demo_quick_reconciles(tmp_path: Path) -> None:
    out = _run(tmp_path)
    ice = _row(out, "iceberg + adaptive")
    assert ice[1] == ParentState.DONE and ice[2] == ice[3] == "30"  # the whole parent filled
    basket = _row(out, "complete set")
    assert basket[1] == ParentState.DONE and basket[2] == "20"  # 10 YES + 10 NO
    fok = _row(out, "FOK market BUY")
    assert fok[1] == OrderState.FILLED
    assert not re.search(r"\bDIFF\b", out)
    # Every reconciliation row compares equal, pUSD and every traded token included.
    rows = [line for line in out.splitlines() if line.rstrip().endswith("ok │")]
    assert len(rows) >= 5 and any("pUSD" in r for r in rows)
    # The run's journal (kept in the given state dir) replays, verified against its own tables.
    state = recover(tmp_path / "local" / "journal.sqlite", attach=False)
    assert state.check_invariants() == []
    assert len(state.fills) >= 4 and all(o.state in TERMINAL for o in state.orders.values())


def test_demo_quick_with_faults_reconciles(tmp_path: Path) -> None:
    out = _run(tmp_path, "--faults")
    assert "faults injected:" in out  # a rehearsal that injected nothing would prove little
    assert _row(out, "iceberg + adaptive")[1] in {s.value for s in ParentState}


def test_verdict_fails_on_any_difference_drift_or_unfinished_order() -> None:
    good = DemoReport(1, True, False, recon=[ReconRow("pUSD", 5 * MICRO, 5 * MICRO)])
    assert good.ok
    assert not DemoReport(1, True, False).ok  # no reconciliation at all proves nothing
    assert not DemoReport(1, True, False, recon=[ReconRow("pUSD", 5 * MICRO, 5 * MICRO + 1)]).ok
    assert not DemoReport(1, True, False, recon=good.recon, drift=["cash_drift: 1"]).ok
    assert not DemoReport(1, True, False, recon=good.recon, unresolved=["0xab… UNKNOWN"]).ok
