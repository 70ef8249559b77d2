"""The README's "Trading from the command line" block, run as written (the iceberg and Kelly parents watched
for a moment only), through the real CLI against `polyoms run` started by the test in its own process
from a fresh state dir: the default local exchange (seed 0, background traders). Each step's problem is
collected so that one failing command does not hide the others. The daemon's stderr, JSON logs in a
pipe, must hold only JSON lines (the human banner stays out of it)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner, Result

from polyoms.cli.main import app
from polyoms.ops.daemon import read_endpoint

ENV = {"POLYOMS_CONTROL_URL": "", "POLYOMS_CONTROL_TOKEN": "", "POLYOMS_STATE_DIR": "", "COLUMNS": "200"}


def _daemon_env(state_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POLYOMS_")}
    env["HOME"] = str(state_dir.parent)  # no config or key of the user's is picked up
    return env


def test_readme_cli_flows_from_a_fresh_state_dir(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    cmd = [sys.executable, "-m", "polyoms.cli.main", "run", "--state-dir", str(state_dir), "--port", "0"]
    daemon = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_daemon_env(state_dir), cwd=tmp_path
    )
    problems: list[str] = []

    def cli(*args: str) -> Result:
        return CliRunner().invoke(app, [*args, "--state-dir", str(state_dir)], env=ENV)

    def step(name: str, r: Result, expect: str | None = None, code: int = 0) -> Result:
        if r.exit_code != code or (expect is not None and expect not in r.stdout):
            problems.append(
                f"{name}: exit {r.exit_code} (wanted {code}); stdout {r.stdout[-400:]!r}; stderr {r.stderr[-400:]!r}"
            )
        return r

    try:
        deadline = time.monotonic() + 90
        while read_endpoint(state_dir) is None and daemon.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert read_endpoint(state_dir) is not None, f"the daemon did not start (rc {daemon.poll()})"
        found = step("markets search", cli("markets", "search", "bitcoin", "--json"))
        markets = json.loads(found.stdout)["markets"] if found.exit_code == 0 else []
        assert markets, f"no bitcoin market: {problems}"
        token = markets[0]["token_ids"][0]
        # The background traders build the demo book within moments of the start: wait for its ask.
        deadline = time.monotonic() + 30
        while not (markets[0].get("asks") or [None])[0] and time.monotonic() < deadline:
            time.sleep(0.5)
            markets = json.loads(cli("markets", "search", "bitcoin", "--json").stdout)["markets"]
        order = ["order", "add", "--token-id", token, "--side", "BUY"]

        limit = step("limit", cli(*order, "--price", "0.24", "--size", "20", "--json"))
        oid = json.loads(limit.stdout)["order_id"] if limit.exit_code == 0 else None
        step("market", cli(*order, "--kind", "market", "--amount", "25"), "filled")
        iceberg = cli(
            *order,
            *("--size", "200", "--price", "0.25", "--algo", "iceberg"),
            *("--param", "display=20", "--param", "limit=0.26", "--param", "urgency=low", "--wait", "2"),
        )
        step("iceberg", iceberg, "parent iceberg-")
        kelly = step("kelly", cli(*order, "--price", "0.25", "--algo", "adaptive", "--kelly", "0.3", "--wait", "1"))
        if kelly.exit_code == 0 and not re.search(r"parent adaptive-\d+: adaptive BUY [0-9.]+ of token", kelly.stdout):
            problems.append(f"kelly: unexpected answer {kelly.stdout!r}")
        step("order list --open", cli("order", "list", "--open"), "iceberg")
        if oid is not None:
            step("order status", cli("order", "status", oid), "audit trail")
            step("order cancel", cli("order", "cancel", oid), f"cancel requested: {oid}")
        step("positions", cli("positions"), "available")
        step("metrics", cli("metrics"), "polyoms_")
        step("stop --emergency", cli("stop", "--emergency"), "EMERGENCY STOP: admission closed")
        step("resume", cli("resume"), "admission open")
        step("stop", cli("stop"))
        try:
            _out, err = daemon.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            problems.append("stop: the daemon did not exit within 60 s")
            daemon.kill()
            _out, err = daemon.communicate()
        if daemon.returncode != 0:
            problems.append(f"stop: the daemon exited {daemon.returncode}")
        lines = [line for line in err.splitlines() if line.strip()]
        not_json = []
        for line in lines:
            try:
                json.loads(line)
            except ValueError:
                not_json.append(line)
        if not_json:
            problems.append(f"daemon stderr (JSON logs) has non-JSON lines: {not_json[:3]}")
        if not any("daemon ready" in line for line in lines):
            problems.append("no 'daemon ready' log event")
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.communicate()
    assert not problems, "\n".join(problems)
