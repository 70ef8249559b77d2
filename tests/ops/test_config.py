"""The config schema is the one source of the loader, the template, `config show` and docs/config.md."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from polyoms.cli.main import app
from polyoms.core.errors import ConfigError
from polyoms.ops import config as cfg

ROOT = Path(__file__).resolve().parents[2]
KEY = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
CANARY_SECRET = "c2VjcmV0LWNhbmFyeS0xMjM0NTY3ODkw"  # base64, like a real API secret
CANARY_PASS = "passphrase-canary-77"


def test_docs_config_md_is_generated_from_the_schema() -> None:
    current = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    assert current == cfg.reference_doc(), "docs/config.md is stale: regenerate it with `make docs`"


def test_every_field_has_one_schema_row_and_every_row_a_field() -> None:
    rows = [k.path for k in cfg.SCHEMA]
    assert len(rows) == len(set(rows))
    fields = {f.name for f in dataclasses.fields(cfg.DaemonConfig)} - set(cfg.SECTIONS) - {"source"}
    expected = set(fields)
    for name, cls in cfg.SECTIONS.items():
        names = (
            cls.__struct_fields__ if hasattr(cls, "__struct_fields__") else [f.name for f in dataclasses.fields(cls)]
        )
        expected |= {f"{name}.{n}" for n in names}
    assert set(rows) == expected


def test_the_template_and_every_shown_default_parse_back_to_the_defaults(tmp_path: Path) -> None:
    defaults = cfg.load_config(None, env={})
    path = tmp_path / "polyoms.toml"
    path.write_text(cfg.template())
    assert dataclasses.replace(cfg.load_config(path, env={}), source="defaults") == defaults
    # Uncomment every setting: each default written as TOML reads back to the same value.
    names = "|".join(sorted({k.name for k in cfg.SCHEMA}))
    uncommented = re.sub(rf"^# ((?:{names}) = )", r"\1", cfg.template(), flags=re.M)
    assert uncommented.count("\n") == cfg.template().count("\n")
    path.write_text(uncommented)
    loaded, settings = cfg.effective_config(path, env={})
    assert dataclasses.replace(loaded, source="defaults") == defaults
    assert {s.origin for s in settings} == {f"file {path}"}
    assert len(re.findall(rf"^(?:{names}) = ", uncommented, re.M)) == len(cfg.SCHEMA)


def test_show_says_where_each_value_came_from_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "polyoms.toml"
    path.write_text('[risk]\nmax_spread = "none"\nmax_orders = 7\n[log]\njson = true\n')
    env = {"POLYOMS_CONTROL_PORT": "8123", "POLYOMS_VENUE": "Local", "POLYOMS_STATE_DIR": str(tmp_path / "s")}
    config, settings = cfg.effective_config(path, env=env)
    origin = {s.key.path: s.origin for s in settings}
    assert origin["control.port"] == "environment POLYOMS_CONTROL_PORT" and config.control.port == 8123
    assert origin["risk.max_spread"] == f"file {path}" and config.risk.max_spread is None
    assert origin["risk.max_orders"] == f"file {path}" and config.risk.max_orders == 7
    assert origin["engine.heartbeat_s"] == "default"
    text = cfg.show(settings, env, config.source)
    assert re.search(r'^max_spread = "none" +# file ', text, re.M)
    assert re.search(r"^port = 8123 +# environment POLYOMS_CONTROL_PORT", text, re.M)
    # The output is itself a config file giving the same configuration.
    again = tmp_path / "again.toml"
    again.write_text(text)
    assert dataclasses.replace(cfg.load_config(again, env={}), source="x") == dataclasses.replace(config, source="x")


def test_environment_errors_name_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"POLYOMS_CONTROL_PORT: control\.port must be within"):
        cfg.load_config(None, env={"POLYOMS_CONTROL_PORT": "70000"})
    with pytest.raises(ConfigError, match="POLYOMS_SIGNATURE_TYPE"):
        cfg.load_config(None, env={"POLYOMS_SIGNATURE_TYPE": "9"})


def test_config_init_writes_the_template_and_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "polyoms.toml"
    runner = CliRunner()
    first = runner.invoke(app, ["config", "init", str(path)])
    assert first.exit_code == 0, first.output
    assert path.read_text() == cfg.template()
    path.write_text("# mine\n")
    refused = runner.invoke(app, ["config", "init", str(path)])
    assert refused.exit_code == 2 and "--force" in refused.output
    assert path.read_text() == "# mine\n"
    forced = runner.invoke(app, ["config", "init", str(path), "--force"])
    assert forced.exit_code == 0 and path.read_text() == cfg.template()


def test_config_show_never_prints_a_secret(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY)
    key_file.chmod(0o600)
    path = tmp_path / "polyoms.toml"
    path.write_text(f'[polymarket]\nkey_file = "{key_file}"\n')
    env = {"POLYOMS_PRIVATE_KEY": KEY, "POLYOMS_API_KEY": "k-1", "POLYOMS_API_SECRET": CANARY_SECRET}
    env["POLYOMS_API_PASSPHRASE"] = CANARY_PASS
    shown = CliRunner().invoke(app, ["config", "show", "--config", str(path)], env=env)
    assert shown.exit_code == 0, shown.output
    for secret in (KEY, CANARY_SECRET, CANARY_PASS, "k-1"):
        assert secret not in shown.output
    assert "private key: set (environment POLYOMS_PRIVATE_KEY)" in shown.output
    assert "API credentials: set (environment)" in shown.output
    partial = {"POLYOMS_API_SECRET": CANARY_SECRET}
    shown = CliRunner().invoke(app, ["config", "show", "--config", str(path)], env=partial)
    assert f"private key: set (key file {key_file})" in shown.output
    assert "incomplete: only POLYOMS_API_SECRET set" in shown.output and CANARY_SECRET not in shown.output
    bad = CliRunner().invoke(app, ["config", "show", "--config", str(tmp_path / "none.toml")], env={})
    assert bad.exit_code == 2 and "does not exist" in bad.output


def test_version_comes_from_the_package_metadata() -> None:
    from importlib.metadata import version

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output == f"polyoms {version('polyoms')}\n"
