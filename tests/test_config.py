"""The config file: what it accepts, how it refuses, and who wins over whom.

Tables of file text -> expected settings (or the error a user reads), then precedence as
the command line sees it (explainer.cli.build_parser()), then a profile connecting to the
real test server.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from explainer.cli import build_parser, main
from explainer.config import (
    SETTINGS,
    ConfigError,
    Profile,
    Settings,
    default_config_path,
    load_settings,
    parse_with_config,
)
from explainer.db.connection import connect

# -- valid files ---------------------------------------------------------------------------

VALID: list[tuple[str, str, dict[str, object]]] = [
    ("empty", "", {"defaults": {}, "profiles": {}, "theme": None, "keys": {}, "format": None}),
    (
        "defaults-by-dest",
        """
        [defaults]
        verify = "hypopg"
        min_gain = 0.25
        min_cost = 0
        statement_timeout = 12
        lock_timeout = 2.5
        analyze = false
        analyze_writes = true
        max_verify_table_size = "2GB"
        allow_large = true
        max_indexes = 5
        max_size = 1048576
        top = 30
        min_calls = 3
        min_total_ms = 1.5
        fail_on = "medium"
        format = "json"
        jobs = 2
        models = "shop.models:Base"
        models_timeout = 60
        python = "/usr/bin/python3"
        """,
        {
            "defaults": {
                "verify": "hypopg", "min_gain": 0.25, "min_cost": 0.0, "timeout": 12.0,
                "lock_timeout": 2.5, "no_analyze": True, "analyze_writes": True,
                "max_verify_table_size": 2 * 1024**3, "allow_large": True, "max_indexes": 5,
                "max_size": 1048576, "top": 30, "min_calls": 3, "min_total_ms": 1.5,
                "fail_on": "medium", "format": "json", "jobs": 2, "models": "shop.models:Base",
                "models_timeout": 60.0, "python": "/usr/bin/python3",
            },
            "format": "json",
        },
    ),
    (
        "profiles",
        """
        [defaults]
        profile = "local"

        [profiles.local]
        host = "127.0.0.1"
        port = 5433
        dbname = "shop"
        user = "app"
        sslmode = "disable"

        [profiles.prod]
        service = "shop-prod"
        verify = "hypopg"
        max_size = "500MB"

        [profiles."with spaces"]
        dsn = "postgresql+psycopg://app@db.internal/shop"
        """,
        {
            "default_profile": "local",
            "profiles": {
                "local": Profile("local", host="127.0.0.1", port="5433", dbname="shop",
                                 user="app", sslmode="disable"),
                "prod": Profile("prod", service="shop-prod",
                                defaults={"verify": "hypopg", "max_size": 500 * 1024**2}),
                "with spaces": Profile("with spaces",
                                       dsn="postgresql+psycopg://app@db.internal/shop"),
            },
        },
    ),
    (
        "tui",
        """
        [tui]
        theme = "nord"
        [tui.keys]
        export = "ctrl+e"
        help = "f1,question_mark"
        """,
        {"theme": "nord", "keys": {"export": "ctrl+e", "help": "f1,question_mark"}},
    ),
]  # fmt: skip


def _write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(line.strip() for line in text.splitlines()) + "\n")
    return path


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in VALID],
                         ids=[n for n, _, _ in VALID])  # fmt: skip
def test_valid_files(tmp_path: Path, text: str, expected: dict[str, object]) -> None:
    path = _write(tmp_path, text)
    settings = load_settings(path)
    assert settings.path == path
    for field, value in expected.items():
        assert getattr(settings, field) == value, field


def test_profiles_and_their_connection_strings(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, next(t for n, t, _ in VALID if n == "profiles")))
    # What --dsn becomes: libpq parameters, or the DSN as written.
    assert conninfo_to_dict(settings.profiles["local"].conninfo or "") == {
        "host": "127.0.0.1", "port": "5433", "dbname": "shop", "user": "app", "sslmode": "disable"
    }  # fmt: skip
    assert settings.profiles["prod"].conninfo == "service=shop-prod"
    assert settings.profiles["with spaces"].conninfo == "postgresql+psycopg://app@db.internal/shop"


def test_a_profile_may_carry_only_settings() -> None:
    """No connection keys: --dsn is left alone and libpq's environment decides."""
    settings = Settings(profiles={"careful": Profile("careful", defaults={"verify": "hypopg"})})
    assert settings.values("careful") == {"verify": "hypopg", "profile": "careful"}


# -- invalid files: one line naming the file, the key and what is expected -------------------

INVALID: list[tuple[str, str, list[str]]] = [
    ("toml-syntax", "[defaults]\nverify = \n", ["line 2: not valid TOML", "invalid value"]),
    ("toml-table", "[defaults\n", ["line 1: not valid TOML"]),
    ("unknown-table", "[default]\nverify = 'none'\n",
     ["default: unknown key", "known keys here: defaults, profiles, tui"]),
    ("unknown-default", "[defaults]\nverfy = 'none'\n",
     ["defaults.verfy: unknown key", "verify", "min_gain", "statement_timeout"]),
    ("unknown-profile-key", "[profiles.dev]\nhostname = 'x'\n",
     ["profiles.dev.hostname: unknown key", "dsn, service, host, port"]),
    ("unknown-tui-key", "[tui]\ncolour = 'red'\n", ["tui.colour: unknown key", "theme, keys"]),
    ("wrong-type-string", "[defaults]\nmin_gain = 'half'\n",
     ['defaults.min_gain: expected a share from 0 to below 1', 'found "half"']),
    ("out-of-range", "[defaults]\nmin_gain = 1.5\n",
     ["defaults.min_gain: expected a share", "found 1.5"]),
    ("bool-is-not-a-number", "[defaults]\nmin_cost = true\n",
     ["defaults.min_cost: expected a planner cost, 0 or more", "found true"]),
    ("seconds", "[defaults]\nstatement_timeout = 0\n",
     ["defaults.statement_timeout: expected a number of seconds above 0", "found 0"]),
    ("count", "[defaults]\ntop = 2.5\n", ["defaults.top: expected a whole number", "found 2.5"]),
    ("size", "[defaults]\nmax_size = 'lots'\n",
     ['defaults.max_size: expected a size', '"500MB"', 'found "lots"']),
    ("choice", "[defaults]\nverify = 'fast'\n",
     ['defaults.verify: expected one of "auto", "rollback", "hypopg", "none"', 'found "fast"']),
    ("flag", "[defaults]\nanalyze = 'no'\n",
     ['defaults.analyze: expected true or false', 'found "no"']),
    ("format", "[defaults]\nformat = 'html'\n",
     ['defaults.format: expected one of "text", "json", "markdown"', 'found "html"']),
    ("table-expected", "defaults = 3\n", ["defaults: expected a table ([defaults])", "found 3"]),
    ("profile-not-table", "[profiles]\ndev = 'localhost'\n",
     ["profiles.dev: expected a table", 'found "localhost"']),
    ("profile-setting", "[profiles.dev]\nverify = 'always'\n",
     ["profiles.dev.verify: expected one of", 'found "always"']),
    ("port", "[profiles.dev]\nport = 70000\n",
     ["profiles.dev.port: expected a port number from 1 to 65535", "found 70000"]),
    ("sslmode", "[profiles.dev]\nsslmode = 'on'\n",
     ['profiles.dev.sslmode: expected one of "disable"', 'found "on"']),
    ("host-type", "[profiles.dev]\nhost = 5\n",
     ["profiles.dev.host: expected a non-empty string, found 5"]),
    ("dsn-and-parts", "[profiles.dev]\ndsn = 'postgresql://db/shop'\nuser = 'app'\n",
     ["profiles.dev: expected either dsn or the parts", "found dsn and user"]),
    ("bad-dsn", "[profiles.dev]\ndsn = 'host'\n",
     ["profiles.dev.dsn: expected a libpq URI, key=value string or SQLAlchemy URL"]),
    ("default-profile", "[defaults]\nprofile = 'prod'\n[profiles.dev]\nhost = 'x'\n",
     ["defaults.profile: expected the name of a [profiles.NAME] table (known: dev)",
      'found "prod"']),
    ("theme", "[tui]\ntheme = 'neon'\n",
     ["tui.theme: expected a Textual theme", "nord", 'found "neon"']),
    ("keys", "[tui.keys]\nexport = 5\n",
     ["tui.keys.export: expected Textual key names", "found 5"]),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in INVALID],
                         ids=[n for n, _, _ in INVALID])  # fmt: skip
def test_invalid_files(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: "), message
    assert "\n" not in message
    for part in expected:
        assert part in message, (part, message)


SECRET = "s3cr3t-Pa55"

PASSWORDS = [
    ("password-key", f"[profiles.dev]\nhost = 'db'\npassword = '{SECRET}'\n",
     "profiles.dev.password"),
    ("uri", f"[profiles.dev]\ndsn = 'postgresql://app:{SECRET}@db/shop'\n", "profiles.dev.dsn"),
    ("key-value", f"[profiles.dev]\ndsn = 'host=db password={SECRET}'\n", "profiles.dev.dsn"),
    ("sqlalchemy", f"[profiles.dev]\ndsn = 'postgresql+psycopg://app:{SECRET}@db/shop'\n",
     "profiles.dev.dsn"),
    ("defaults", f"[defaults]\npassword = '{SECRET}'\n", "defaults.password"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "key"), [(t, k) for _, t, k in PASSWORDS],
                         ids=[n for n, _, _ in PASSWORDS])  # fmt: skip
def test_passwords_are_refused_and_never_echoed(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: {key}: ")
    assert "~/.pgpass" in message and "service file" in message and "prompt" in message
    assert SECRET not in message


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b"[defaults]\nverify = '\xff'\n")
    with pytest.raises(ConfigError, match="not valid TOML: the file is not UTF-8"):
        load_settings(path)


# -- where the file is -----------------------------------------------------------------------


def test_default_path_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert default_config_path() == tmp_path / "explainer" / "config.toml"
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")  # ignored, as XDG says
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_config_path() == tmp_path / "home" / ".config" / "explainer" / "config.toml"


def test_missing_default_file_is_no_settings_but_a_missing_named_one_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert load_settings() == Settings()
    with pytest.raises(ConfigError, match=r"nowhere\.toml: no such config file"):
        load_settings(tmp_path / "nowhere.toml")
    # The default file is read when it is there.
    (tmp_path / "explainer").mkdir()
    (tmp_path / "explainer" / "config.toml").write_text("[defaults]\nverify = 'none'\n")
    assert load_settings().defaults == {"verify": "none"}


# -- precedence through the real command line ------------------------------------------------

PRECEDENCE_FILE = """
[defaults]
verify = "rollback"
min_gain = 0.3
statement_timeout = 20
format = "markdown"

[profiles.prod]
host = "db.internal"
dbname = "shop"
verify = "hypopg"
min_gain = 0.6

[profiles.dev]
dsn = "postgresql://app@localhost/shop_dev"
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-default-here"))
    return _write(tmp_path, PRECEDENCE_FILE)


def _parse(argv: list[str]) -> argparse.Namespace:
    args, _ = parse_with_config(build_parser(), argv)
    return args


# (extra arguments, expected values): [defaults] < profile < typed flag.
PRECEDENCE: list[tuple[list[str], dict[str, object]]] = [
    ([], {"verify": "rollback", "min_gain": 0.3, "timeout": 20.0, "format": "markdown",
          "dsn": None, "profile": None}),
    (["--profile", "prod"], {"verify": "hypopg", "min_gain": 0.6, "timeout": 20.0,
                             "dsn": "host=db.internal dbname=shop", "profile": "prod"}),
    (["--profile", "prod", "--verify", "none", "--min-gain", "0.1", "--timeout", "5"],
     {"verify": "none", "min_gain": 0.1, "timeout": 5.0, "dsn": "host=db.internal dbname=shop"}),
    (["--profile=dev", "--dsn", "postgresql://other/db"],
     {"dsn": "postgresql://other/db", "verify": "rollback", "profile": "dev"}),
    (["--format", "text"], {"format": "text"}),
]  # fmt: skip


@pytest.mark.parametrize(("extra", "expected"), PRECEDENCE)
def test_flag_beats_profile_beats_defaults(
    config: Path, extra: list[str], expected: dict[str, object]
) -> None:
    args = _parse(["analyze", "--query", "SELECT 1", "--config", str(config), *extra])
    for dest, value in expected.items():
        assert getattr(args, dest) == value, dest


def test_without_a_file_nothing_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    for argv in (["analyze", "--query", "x"], ["workload", "--log", "f"], ["plan", "f"],
                 ["demo"], ["rules"]):  # fmt: skip
        args = _parse(argv)
        plain = vars(build_parser().parse_args(argv))
        assert {k: v for k, v in vars(args).items() if k not in ("config", "profile")} == plain


def test_each_command_takes_only_what_it_has(config: Path) -> None:
    # plan has no --dsn and no --verify: the profile's must not appear or choke it.
    args = _parse(["plan", "some.plan", "--config", str(config), "--profile", "prod"])
    assert not hasattr(args, "dsn") and not hasattr(args, "verify")
    assert args.format == "markdown"
    # workload has no markdown format: it keeps its own default.
    assert _parse(["workload", "--log", "f", "--config", str(config)]).format == "text"


def test_a_required_dsn_comes_only_from_a_profile_typed_on_the_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "none"))
    path = _write(tmp_path, PRECEDENCE_FILE.replace("[defaults]", "[defaults]\nprofile = 'dev'"))
    args = _parse(["apply", "x.sql", "--config", str(path), "--profile", "dev"])
    assert args.dsn == "postgresql://app@localhost/shop_dev"
    # The default profile does not choose the database a command changes.
    with pytest.raises(SystemExit):
        _parse(["apply", "x.sql", "--config", str(path)])
    assert "--dsn" in capsys.readouterr().err
    # ...but it is used by the commands that only read.
    assert _parse(["analyze", "--query", "x", "--config", str(path)]).profile == "dev"


def test_unknown_profile_lists_the_known_ones(config: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        _parse(["analyze", "--query", "x", "--config", str(config), "--profile", "staging"])
    assert str(raised.value) == f"{config}: no profile 'staging'; known profiles: dev, prod"


def test_a_profile_without_any_file_says_where_to_write_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    with pytest.raises(ConfigError) as raised:
        _parse(["analyze", "--query", "x", "--profile", "prod"])
    assert str(raised.value) == (
        f"--profile prod: there is no config file ({tmp_path / 'explainer' / 'config.toml'}); "
        "write the profile there as [profiles.prod] or pass --config FILE"
    )


def test_abbreviated_config_option_is_refused(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        _parse(["analyze", "--query", "x", "--config", str(config), "--prof", "prod"])
    assert "write --config FILE and --profile NAME in full" in capsys.readouterr().err


def test_the_command_reports_a_bad_file_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "[defaults]\nmin_gain = 2\n")
    assert main(["rules", "--config", str(path)]) == 2
    error = capsys.readouterr().err
    assert error == f"explainer: error: {path}: defaults.min_gain: expected a share from 0 to "\
        "below 1 (0.5 = 50%), found 2\n"


def test_every_setting_is_an_option_of_analyze() -> None:
    """A renamed option in cli.py must not leave a config key that silently does nothing."""
    parser = build_parser()
    analyze = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[
        "analyze"
    ]
    dests = {action.dest for action in analyze._actions}
    assert {key.dest for key in SETTINGS.values()} <= dests


# -- a profile connects to the real server ---------------------------------------------------


def _profile_for(dsn: str) -> str:
    """A [profiles.test] with the test server's parts (the suite's servers use no password)."""
    params = conninfo_to_dict(dsn)
    assert "password" not in params
    lines = ["[profiles.test]"]
    lines += [
        f'{key} = "{params[key]}"' for key in ("host", "port", "dbname", "user") if key in params
    ]
    lines += ["verify = \"none\"", "statement_timeout = 7"]  # fmt: skip
    return "\n".join(lines) + "\n"


def test_profile_connects_through_the_command(
    db_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "none"))
    path = _write(tmp_path, _profile_for(db_dsn))
    out = tmp_path / "report.json"
    code = main(["analyze", "--config", str(path), "--profile", "test", "--query",
                 "SELECT current_database()", "--format", "json", "-o", str(out)])  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    assert report["database"]["database"] == conninfo_to_dict(db_dsn)["dbname"]
    assert report["database"]["verify_method"] == "none"


def test_profile_dsn_reaches_the_server(db_dsn: str, tmp_path: Path) -> None:
    """The same through parse_with_config and the connection the pipeline opens."""
    path = _write(tmp_path, _profile_for(db_dsn))
    args = _parse(["analyze", "--query", "x", "--config", str(path), "--profile", "test"])
    assert args.timeout == 7.0
    with connect(args.dsn) as conn:
        row = conn.execute("SELECT current_database()").fetchone()
    assert row == (conninfo_to_dict(db_dsn)["dbname"],)


# -- the documentation ---------------------------------------------------------------------

DOCS = Path(__file__).resolve().parent.parent / "docs" / "config.md"


def test_the_documented_example_is_a_valid_file(tmp_path: Path) -> None:
    text = DOCS.read_text()
    example = text.split("```toml\n", 1)[1].split("```", 1)[0]
    settings = load_settings(_write(tmp_path, example))
    assert settings.default_profile == "local"
    assert settings.profiles["prod"].defaults == {
        "verify": "hypopg", "no_analyze": True, "max_indexes": 5
    }  # fmt: skip
    assert settings.theme == "nord" and settings.keys["export"] == "ctrl+e"


def test_every_key_is_documented() -> None:
    text = DOCS.read_text()
    for key in SETTINGS:
        assert f"| `{key}` |" in text, key
