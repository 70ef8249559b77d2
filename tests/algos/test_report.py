"""`polyoms report algos`: runs the scenarios and writes their measurements; the same seed, the same file."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from polyoms.cli.main import app

SCENARIOS = ["--scenario", "adaptive/undercut", "--scenario", "multileg/one-leg-killed"]


def test_report_writes_measured_numbers_reproducibly(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "docs" / "algos.md"
    result = runner.invoke(app, ["report", "algos", "--seed", "3", "--no-latency", "--out", str(out), *SCENARIOS])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "`polyoms report algos --seed 3`" in text
    rows = [line for line in text.splitlines() if line.startswith("| adaptive") or line.startswith("| multileg")]
    # the measured numbers: 40 bought at 0.48375 (mid 0.48), 2 adjustments; the basket unwound for 0.25
    assert rows[0].split(" | ")[2:] == [
        "DONE",
        "100.0%",
        "40 / 40",
        "0.48375",
        "0.48",
        "+0.00375",
        "2",
        "25.0",
        "37.0",
        "– |",
    ]
    assert rows[1].split(" | ")[2] == "UNWOUND" and rows[1].endswith("| +0.25 |")
    assert "RAISE_BID @0.47" in text and "UNWIND @0.55 x20: buy the complement" in text
    assert "None: every order, cancel and event reaches the other side at once." in text


def test_report_with_latency_says_what_it_changed_reproducibly(tmp_path: Path) -> None:
    runner = CliRunner()
    out, again = tmp_path / "algos.md", tmp_path / "again.md"
    assert runner.invoke(app, ["report", "algos", "--seed", "3", "--out", str(out), *SCENARIOS]).exit_code == 0
    text = out.read_text()
    assert "**Entry** (an order or a cancel reaching the exchange): median 35 ms, 20–60 ms, lognormal σ 0.3" in text
    assert "without latency: " in text and "the last fill moved by +" in text
    assert runner.invoke(app, ["report", "algos", "--seed", "3", "--out", str(again), *SCENARIOS]).exit_code == 0
    assert again.read_text() == text


def test_report_refuses_an_unknown_scenario(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", "algos", "--out", str(tmp_path / "x.md"), "--scenario", "nope"])
    assert result.exit_code == 2 and "unknown scenario" in result.output
    assert not (tmp_path / "x.md").exists()
