"""Settings: one TOML file, loaded once into frozen, typed objects.

Why: configuration flows one way (ARCHITECTURE C6) -- ``load()`` validates everything
before any port is bound, so a typo stops start-up with a message naming the key instead
of surfacing as a strange runtime failure.  Each part of the server receives only its own
section.  Every setting is documented once, in ``docs/configuration.md``.

This module reads and validates; what settings exist, with their defaults, is in
``config_sections``, and what values each accepts in ``config_checks``.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
from datetime import date, datetime, timezone
from pathlib import Path

from mailstack import config_checks
from mailstack.config_sections import Config


class ConfigError(ValueError):
    """A setting is missing, unknown or invalid; the message names the key."""


def load(path: str | Path) -> Config:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    if "base_dir" in raw:
        raise ConfigError("base_dir: unknown setting")
    raw["base_dir"] = str(path.resolve().parent)
    return from_dict(raw)


def from_dict(raw: dict) -> Config:
    config = _build(Config, raw, "")
    _check_listeners(config.listeners)
    problem = config_checks.mx_relay_needs_customers(config)
    if problem is not None:
        raise ConfigError(problem)
    return config


def _check_listeners(listeners):
    seen = set()
    for i, listener in enumerate(listeners):
        if listener.protocol in ("http", "metrics") and listener.tls == "starttls":
            raise ConfigError(f"listeners[{i}].tls: an {listener.protocol} listener is 'none' "
                              "or 'implicit'")
        key = (listener.address, listener.port)
        if listener.port and key in seen:
            raise ConfigError(f"listeners[{i}].port: {listener.address}:{listener.port} is used twice")
        seen.add(key)


def _build(cls, raw, where):
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'config'}: must be a table")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in names:
            raise ConfigError(f"{_join(where, key)}: unknown setting{_closest(key, names)}")
    values = {}
    for f in dataclasses.fields(cls):
        key = _join(where, f.name)
        if f.name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{key}: required setting is missing")
            continue
        values[f.name] = _convert(hints[f.name], raw[f.name], key, f.metadata)
    return cls(**values)


def _closest(key: str, names) -> str:
    """``"; did you mean 'x'?"`` for a misspelt key (postconf's habit), else nothing."""
    found = difflib.get_close_matches(key, sorted(names), n=1, cutoff=0.7)
    return f"; did you mean {found[0]!r}?" if found else ""


def _convert(hint, value, key, meta):
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):   # "X | None": TOML has no null
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
        origin = typing.get_origin(hint)
    if hint is datetime:
        return _moment(value, key)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key)
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: must be a list")
        item = typing.get_args(hint)[0]
        return tuple(
            _convert(item, v, f"{key}[{i}]", {"check": meta.get("each")})
            for i, v in enumerate(value)
        )
    expected = {int: int, str: str, bool: bool, float: (int, float)}[hint]
    if not isinstance(value, expected) or (hint is int and isinstance(value, bool)):
        raise ConfigError(f"{key}: must be of type {hint.__name__}, not {type(value).__name__}")
    check = meta.get("check") if meta else None
    if check is not None:
        try:
            check(value)
        except ValueError as e:
            raise ConfigError(f"{key}: {value!r} {e}") from None
    return value


def _moment(value, key) -> datetime:
    """A TOML offset date-time, or a date meaning its midnight UTC; never a local time."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ConfigError(f"{key}: give a UTC offset, e.g. 2027-03-01T00:00:00Z")
        return value.astimezone(timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    raise ConfigError(f"{key}: must be a date or an offset date-time, not {type(value).__name__}")


def _join(where, key):
    return f"{where}.{key}" if where else key
