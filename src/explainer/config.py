"""Settings: the user's config file of connection profiles, defaults, theme and keys.

A DBA runs explainer against the same few databases with the same habits (HypoPG on
production, a longer timeout on the reporting replica), so those live in one TOML file
instead of on every command line: ``$XDG_CONFIG_HOME/explainer/config.toml`` (else
``~/.config/explainer/config.toml``), or the file ``--config FILE`` names.

What the file holds, every key with its meaning, is in ``docs/config.md``. The rules that
shape this module:

* The file only supplies *defaults*: a flag typed on the command line wins over the chosen
  profile (``--profile NAME``), which wins over ``[defaults]``. That is argparse's own rule
  for defaults, so :func:`parse_with_config` sets the parser's defaults and parses once.
* Keys are validated when the file is read, against their own table, so a mistake is
  reported whatever the command: one line naming the file, the key and what is expected
  (and, except for connection strings, what was found).
* A password is never read from the file: a plain-text file of secrets is exactly what
  ~/.pgpass (mode 0600, checked by libpq), service files and the prompt exist to avoid.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from explainer.db.connection import normalize_dsn
from explainer.errors import InputError
from explainer.units import parse_size

APP_NAME = "explainer"
CONFIG_NAME = "config.toml"

PASSWORD_HINT = (
    "passwords are never read from the config file: use ~/.pgpass, a service file "
    "(service = NAME in the profile) or the password prompt"
)


class ConfigError(InputError):
    """The config file cannot be used as written: the one-line message names the file,
    the key and what is expected there."""


# -- the model -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Profile:
    """A named connection (``[profiles.NAME]``) and the settings that go with it.

    Never a password: the file is refused when one is written in it.
    """

    name: str
    #: A libpq URI, key=value string or SQLAlchemy URL, as given (without password).
    dsn: str | None = None
    #: A pg_service.conf entry (libpq ``service``): the host, user and password live there.
    service: str | None = None
    host: str | None = None
    port: str | None = None
    dbname: str | None = None
    user: str | None = None
    sslmode: str | None = None
    #: A password file other than ~/.pgpass (libpq ``passfile``).
    passfile: str | None = None
    #: Analysis settings of this profile, by argparse dest; they win over [defaults].
    defaults: dict[str, object] = field(default_factory=dict)

    @property
    def conninfo(self) -> str | None:
        """What ``--dsn`` gets from this profile: the DSN as written, else a key=value
        string of the parts given; None when the profile names no connection at all (it
        then only carries settings, and libpq's environment decides where to connect)."""
        if self.dsn is not None:
            return self.dsn
        parts = {
            name: value
            for name, value in (
                ("service", self.service),
                ("host", self.host),
                ("port", self.port),
                ("dbname", self.dbname),
                ("user", self.user),
                ("sslmode", self.sslmode),
                ("passfile", self.passfile),
            )
            if value is not None
        }
        return make_conninfo("", **parts) if parts else None


@dataclass(frozen=True, slots=True)
class Settings:
    """What the config file says; empty when there is no file."""

    #: The file read, None when there was none.
    path: Path | None = None
    profiles: dict[str, Profile] = field(default_factory=dict)
    #: ``[defaults]``, by argparse dest (``statement_timeout`` is ``timeout``, ``analyze =
    #: false`` is ``no_analyze = True``), values already converted (sizes in bytes).
    defaults: dict[str, object] = field(default_factory=dict)
    #: ``[tui] theme``: a Textual theme name.
    theme: str | None = None
    #: ``[tui.keys]``: binding id -> keys (Textual key names, comma-separated).
    keys: dict[str, str] = field(default_factory=dict)
    #: ``[defaults] format``: the report format (text, json, markdown).
    format: str | None = None
    #: ``[defaults] profile``: the profile used when no ``--profile`` is given.
    default_profile: str | None = None

    def profile(self, name: str | None) -> Profile | None:
        """The profile called ``name`` (the default profile when None), or None when no
        profile applies; ConfigError listing the known ones for an unknown name."""
        if name is None:
            name = self.default_profile
            if name is None:
                return None
        if name in self.profiles:
            return self.profiles[name]
        if self.path is None:
            raise ConfigError(
                f"--profile {name}: there is no config file ({default_config_path()}); "
                "write the profile there as [profiles." + name + "] or pass --config FILE"
            )
        known = ", ".join(sorted(self.profiles)) or "none: the file defines no [profiles.NAME]"
        raise ConfigError(f"{self.path}: no profile {name!r}; known profiles: {known}")

    def values(self, profile: str | None = None) -> dict[str, object]:
        """The defaults for a command, by argparse dest: ``[defaults]``, then the
        profile's settings over them, its connection as ``dsn`` and its name as
        ``profile``."""
        values = dict(self.defaults)
        chosen = self.profile(profile)
        if chosen is not None:
            values.update(chosen.defaults)
            values["profile"] = chosen.name
            if chosen.conninfo is not None:
                values["dsn"] = chosen.conninfo
        return values


# -- where the file is -----------------------------------------------------------------------


def default_config_path() -> Path:
    """``$XDG_CONFIG_HOME/explainer/config.toml``, else ``~/.config/explainer/config.toml``
    (``%APPDATA%\\explainer\\config.toml`` on Windows). A relative XDG_CONFIG_HOME is
    ignored, as the XDG specification says."""
    if sys.platform == "win32" and os.environ.get("APPDATA"):
        return Path(os.environ["APPDATA"]) / APP_NAME / CONFIG_NAME
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".config"
    return base / APP_NAME / CONFIG_NAME


# -- values: what each key accepts -------------------------------------------------------------


class _Unfit(ValueError):
    """A value of the wrong type or out of range (the caller words the message)."""


def _number(value: object) -> float:
    # TOML booleans are Python ints: ``min_cost = true`` is not a cost.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Unfit
    return float(value)


def _whole(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Unfit
    return value


def _seconds(value: object) -> object:
    number = _number(value)
    if number <= 0:
        raise _Unfit
    return number


def _share(value: object) -> object:
    number = _number(value)
    if not 0 <= number < 1:
        raise _Unfit
    return number


def _not_negative(value: object) -> object:
    number = _number(value)
    if number < 0:
        raise _Unfit
    return number


def _count(value: object) -> object:
    number = _whole(value)
    if number < 1:
        raise _Unfit
    return number


def _size(value: object) -> object:
    if isinstance(value, str):
        try:
            return parse_size(value)
        except ValueError:
            raise _Unfit from None
    number = _whole(value)
    if number < 0:
        raise _Unfit
    return number


def _flag(value: object) -> object:
    if not isinstance(value, bool):
        raise _Unfit
    return value


def _negated(value: object) -> object:
    return not _flag(value)


def _text(value: object) -> object:
    if not isinstance(value, str) or not value.strip():
        raise _Unfit
    return value


def _choice(*allowed: str) -> Callable[[object], object]:
    def check(value: object) -> object:
        if value not in allowed:
            raise _Unfit
        return value

    return check


def _one_of(*allowed: str) -> str:
    return "one of " + ", ".join(f'"{a}"' for a in allowed)


@dataclass(frozen=True, slots=True)
class _Key:
    """One analysis setting: the argparse dest it sets, what it accepts, its check."""

    dest: str
    expected: str
    convert: Callable[[object], object]


_SECONDS = "a number of seconds above 0"
_SIZE = 'a size: a number of bytes or a string such as "500MB", "1GB", "8kB"'
_COUNT = "a whole number, 1 or more"
_BOOL = "true or false"

#: Settings of ``[defaults]`` and of each profile, by config key. The dests are those of
#: ``explainer.cli.build_parser()``; a command gets those it has (``plan`` has no ``dsn``).
SETTINGS: dict[str, _Key] = {
    "verify": _Key(
        "verify",
        _one_of("auto", "rollback", "hypopg", "none"),
        _choice("auto", "rollback", "hypopg", "none"),
    ),
    "min_gain": _Key("min_gain", "a share from 0 to below 1 (0.5 = 50%)", _share),
    "min_cost": _Key("min_cost", "a planner cost, 0 or more", _not_negative),
    "statement_timeout": _Key("timeout", _SECONDS, _seconds),
    "lock_timeout": _Key("lock_timeout", _SECONDS, _seconds),
    "analyze": _Key("no_analyze", _BOOL, _negated),
    "analyze_writes": _Key("analyze_writes", _BOOL, _flag),
    "max_verify_table_size": _Key("max_verify_table_size", _SIZE, _size),
    "allow_large": _Key("allow_large", _BOOL, _flag),
    "max_indexes": _Key("max_indexes", _COUNT, _count),
    "max_size": _Key("max_size", _SIZE, _size),
    "top": _Key("top", _COUNT, _count),
    "min_calls": _Key("min_calls", _COUNT, _count),
    "min_total_ms": _Key("min_total_ms", "a number of milliseconds, 0 or more", _not_negative),
    "fail_on": _Key("fail_on", _one_of("low", "medium", "high"), _choice("low", "medium", "high")),
    "format": _Key(
        "format", _one_of("text", "json", "markdown"), _choice("text", "json", "markdown")
    ),
    "jobs": _Key("jobs", _COUNT, _count),
    "models": _Key("models", "a models target (myapp.models, module:Base or a file)", _text),
    "models_timeout": _Key("models_timeout", _SECONDS, _seconds),
    "python": _Key("python", "the path of a Python interpreter", _text),
}

_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
#: Connection keys of a profile besides ``dsn`` (libpq parameter names).
CONNECTION_KEYS = ("service", "host", "port", "dbname", "user", "sslmode", "passfile")
_TABLES = ("defaults", "profiles", "tui")
_TUI_KEYS = ("theme", "keys")


# -- reading the file ----------------------------------------------------------------------


def _found(value: object) -> str:
    """A value as the file wrote it, for 'found ...'."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"' if len(value) <= 60 else f'"{value[:57]}..."'
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, datetime | date | time):
        return f"a date/time ({value.isoformat()})"
    return repr(value)


class _Reader:
    """Checks one parsed document; every error names ``path`` and the dotted key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {message}")

    def expected(self, key: str, expected: str, value: object) -> ConfigError:
        return self.error(key, f"expected {expected}, found {_found(value)}")

    def table(self, key: str, value: object) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.expected(key, f"a table ([{key}])", value)
        return value

    def only(self, where: str, table: Mapping[str, object], known: Sequence[str]) -> None:
        """Refuse keys that mean nothing here (a typo silently ignored is a setting that
        silently does not apply), and passwords anywhere, with the password rule."""
        for key in table:
            dotted = f"{where}.{key}" if where else key
            if key == "password":
                raise self.error(dotted, PASSWORD_HINT)
            if key not in known:
                raise self.error(dotted, f"unknown key; known keys here: {', '.join(known)}")

    def settings(self, where: str, table: Mapping[str, object]) -> dict[str, object]:
        values: dict[str, object] = {}
        for key, value in table.items():
            setting = SETTINGS.get(key)
            if setting is None:
                continue
            try:
                values[setting.dest] = setting.convert(value)
            except _Unfit:
                raise self.expected(f"{where}.{key}", setting.expected, value) from None
        return values

    def read(self, document: dict[str, Any]) -> Settings:
        self.only("", document, _TABLES)
        defaults_table = self.table("defaults", document.get("defaults", {}))
        self.only("defaults", defaults_table, [*SETTINGS, "profile"])
        defaults = self.settings("defaults", defaults_table)
        profiles_table = self.table("profiles", document.get("profiles", {}))
        profiles = {
            name: self.profile(name, self.table(f"profiles.{name}", value))
            for name, value in profiles_table.items()
        }
        default_profile = defaults_table.get("profile")
        if default_profile is not None:
            if not isinstance(default_profile, str):
                raise self.expected("defaults.profile", "a profile name", default_profile)
            if default_profile not in profiles:
                known = ", ".join(sorted(profiles)) or "none"
                raise self.error(
                    "defaults.profile",
                    f"expected the name of a [profiles.NAME] table (known: {known}), "
                    f"found {_found(default_profile)}",
                )
        tui = self.table("tui", document.get("tui", {}))
        self.only("tui", tui, _TUI_KEYS)
        fmt = defaults.get("format")
        return Settings(
            path=self.path,
            profiles=profiles,
            defaults=defaults,
            theme=self.theme(tui.get("theme")),
            keys=self.keys(self.table("tui.keys", tui.get("keys", {}))),
            format=fmt if isinstance(fmt, str) else None,
            default_profile=default_profile,
        )

    def profile(self, name: str, table: Mapping[str, object]) -> Profile:
        where = f"profiles.{name}"
        self.only(where, table, ["dsn", *CONNECTION_KEYS, *SETTINGS])
        parts: dict[str, str] = {}
        for key in ("dsn", *CONNECTION_KEYS):
            if key not in table:
                continue
            value = table[key]
            if key == "port":
                parts[key] = self.port(f"{where}.port", value)
                continue
            if not isinstance(value, str) or not value.strip():
                # Never echo a DSN (it may hold a password the check below would refuse).
                shown = "a string" if isinstance(value, str) else _found(value)
                raise self.error(f"{where}.{key}", f"expected a non-empty string, found {shown}")
            if key == "sslmode" and value not in _SSLMODES:
                raise self.expected(f"{where}.sslmode", _one_of(*_SSLMODES), value)
            parts[key] = value
        if "dsn" in parts:
            others = [key for key in CONNECTION_KEYS if key in parts]
            if others:
                raise self.error(
                    where,
                    f"expected either dsn or the parts ({', '.join(CONNECTION_KEYS)}), "
                    f"found dsn and {', '.join(others)}",
                )
            self.dsn(f"{where}.dsn", parts["dsn"])
        return Profile(name=name, defaults=self.settings(where, table), **parts)

    def port(self, key: str, value: object) -> str:
        text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
        if not text.isdigit() or not 0 < int(text) < 65536:
            raise self.expected(key, "a port number from 1 to 65535", value)
        return text

    def dsn(self, key: str, dsn: str) -> None:
        expected = "expected a libpq URI, key=value string or SQLAlchemy URL"
        try:
            params = conninfo_to_dict(normalize_dsn(dsn))
        except InputError as exc:  # normalize_dsn scrubs the password from its reason
            raise self.error(key, f"{expected}; {' '.join(str(exc).split())}") from None
        except psycopg.ProgrammingError:
            raise self.error(key, expected) from None
        if params.get("password") is not None:
            raise self.error(key, f"holds a password; {PASSWORD_HINT}")

    def theme(self, value: object) -> str | None:
        if value is None:
            return None
        # Imported here: only a file that names a theme pays for loading Textual.
        from textual.theme import BUILTIN_THEMES

        if not isinstance(value, str) or value not in BUILTIN_THEMES:
            raise self.expected("tui.theme", "a Textual theme: " + ", ".join(BUILTIN_THEMES), value)
        return value

    def keys(self, table: Mapping[str, object]) -> dict[str, str]:
        keys: dict[str, str] = {}
        for action, value in table.items():
            if not isinstance(value, str) or not _KEYS.match(value):
                raise self.expected(
                    f"tui.keys.{action}",
                    'Textual key names, comma-separated (such as "ctrl+e" or "f5,ctrl+r")',
                    value,
                )
            keys[action] = value
        return keys


#: Key names as Textual's keymaps take them: ``ctrl+e``, ``f5``, ``question_mark``, ``a``.
_KEYS = re.compile(r"^\s*[\w+\-]+(\s*,\s*[\w+\-]+)*\s*$")


def load_settings(path: Path | None = None) -> Settings:
    """Read and check the config file: ``path`` (``--config``), else the default one.

    A missing default file means no settings (empty :class:`Settings`); a missing file
    the user named is an error, as is anything in the file that does not fit.
    """
    explicit = path is not None
    target = path if path is not None else default_config_path()
    try:
        data = target.read_bytes()
    except FileNotFoundError:
        if not explicit:
            return Settings()
        raise ConfigError(f"{target}: no such config file (--config)") from None
    except OSError as exc:
        reason = exc.strerror.lower() if exc.strerror else str(exc)
        raise ConfigError(f"{target}: cannot read the config file: {reason}") from None
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{target}: not valid TOML: the file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{target}: {_toml_reason(str(exc))}") from None
    return _Reader(target).read(document)


def _toml_reason(message: str) -> str:
    """tomllib's 'Invalid value (at line 2, column 5)' as 'line 2: not valid TOML:
    invalid value (column 5)', the line first as editors and compilers print it."""
    match = re.search(r"\s*\(at line (\d+), column (\d+)\)\s*$", message)
    if not match:
        return f"not valid TOML: {message}"
    reason = message[: match.start()]
    reason = reason[:1].lower() + reason[1:]
    return f"line {match.group(1)}: not valid TOML: {reason} (column {match.group(2)})"


# -- the command line ----------------------------------------------------------------------


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` and ``--profile NAME`` (no-op when the parser has them)."""
    if "--config" in parser._option_string_actions:
        return
    group = parser.add_argument_group("settings (docs/config.md)")
    group.add_argument(
        "--config",
        metavar="FILE",
        help=f"the config file (default: {_home_relative(default_config_path())})",
    )
    group.add_argument(
        "--profile",
        metavar="NAME",
        help="a [profiles.NAME] of the config file: its connection and settings",
    )


def _home_relative(path: Path) -> str:
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    return [
        sub
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for sub in action.choices.values()
    ]


def _set_defaults(
    parser: argparse.ArgumentParser, values: Mapping[str, object], *, explicit: bool
) -> None:
    """Give ``parser`` the values it has a dest for, and fit its choices.

    A required option (``apply --dsn``) is only satisfied by a profile the user chose on
    this command line, never by the default profile: a command that changes a database
    must not pick it silently.
    """
    actions = {action.dest: action for action in parser._actions}
    chosen: dict[str, object] = {}
    for dest, value in values.items():
        action = actions.get(dest)
        if action is None:
            continue
        if action.choices is not None and value not in action.choices:
            continue  # format = "markdown" means nothing to ``workload`` (text, json)
        if action.required:
            if not explicit:
                continue
            action.required = False
        chosen[dest] = value
    parser.set_defaults(**chosen)


def parse_with_config(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None
) -> tuple[argparse.Namespace, Settings]:
    """Parse ``argv`` with the config file's settings as defaults.

    ``--config``/``--profile`` are read first (anywhere on the line); the settings are
    checked (ConfigError), then each subcommand parser (or ``parser`` itself when it has
    none) gets as defaults the values it has a dest for, so that whatever is typed on the
    command line wins, the profile next, ``[defaults]`` last.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    targets = _subparsers(parser) or [parser]
    for target in targets:
        add_config_arguments(target)
    early = argparse.ArgumentParser(add_help=False, allow_abbrev=False, exit_on_error=False)
    early.add_argument("--config")
    early.add_argument("--profile")
    try:
        known, _ = early.parse_known_args(arguments)
    except argparse.ArgumentError:
        # ``--config`` without its FILE: the real parser says so, in its own words.
        return parser.parse_args(arguments), Settings()
    settings = load_settings(Path(known.config) if known.config else None)
    values = settings.values(known.profile)
    for target in targets:
        _set_defaults(target, values, explicit=known.profile is not None)
    args = parser.parse_args(arguments)
    if getattr(args, "config", None) != known.config or getattr(args, "profile", None) != (
        values.get("profile")
    ):
        # Abbreviated (``--prof``), which the early pass does not read: refuse rather than
        # silently run without the settings asked for.
        parser.error("write --config FILE and --profile NAME in full")
    return args, settings
