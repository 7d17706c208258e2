"""Typed plugin options: TOML values checked and converted against dataclass annotations.

A plugin declares its options as a dataclass; `build()` turns one TOML table into an
instance, or raises OptionError naming the option and what was expected.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import types
import typing
from typing import Any, get_args, get_origin, get_type_hints

from agent.errors import OptionError
from agent.secret_values import reveals_environment

# difflib's cutoff for a suggestion: how alike two names must be (0 to 1).
SUGGESTION_CUTOFF = 0.6


class Duration(float):
    """A time span in seconds, written in config as Telegraf does: "10s", "500ms", "1m30s".

    As an option it is zero or more: a delay, a jitter, a precision ("0s" for the default).
    """

    __slots__ = ()


class PositiveDuration(Duration):
    """A Duration that must be more than zero: how often something runs, or how long it may
    take. Zero would divide by zero in the scheduler, and a negative one spin it."""

    __slots__ = ()


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
}  # fmt: skip


def parse_duration(text: str) -> Duration:
    """Parse Go's duration syntax ("1h30m", "500ms"); a bare number is seconds, as in Telegraf."""
    text = text.strip()
    if not text:
        return Duration(0.0)
    try:
        return Duration(float(text))
    except ValueError:
        pass
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    position, total = 0, 0.0
    for match in _DURATION_PART.finditer(body):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if not body or position != len(body):
        raise ValueError(f'"{text}" is not a duration (expected e.g. "10s", "500ms", "1m30s")')
    return Duration(sign * total)


def _type_name(annotation: Any) -> str:
    if annotation is PositiveDuration:
        return 'a duration greater than zero, such as "10s"'
    if annotation is Duration:
        return 'a duration of zero or more, such as "10s"'
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(annotation) if a is not type(None))
    if origin is list:
        return f"a list of {_type_name(get_args(annotation)[0]).removeprefix('a ')}s"
    if origin is dict:
        return "a table"
    if dataclasses.is_dataclass(annotation):
        return "a table"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(annotation))
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(
        annotation, str(annotation)
    )


def convert(value: Any, annotation: Any, option: str) -> Any:
    """Convert one TOML value to `annotation`, or raise OptionError."""
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for candidate in get_args(annotation):
            if candidate is type(None):
                continue
            try:
                return convert(value, candidate, option)
            except OptionError:
                continue
        raise _mismatch(value, annotation, option)
    if origin is typing.Literal:
        if value in get_args(annotation):
            return value
        raise _mismatch(value, annotation, option)
    if annotation in (Duration, PositiveDuration):
        return _duration(value, annotation, option)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise _mismatch(value, annotation, option)
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _mismatch(value, annotation, option)
    if annotation is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise _mismatch(value, annotation, option)
    if annotation is str:
        if isinstance(value, str):
            return value
        raise _mismatch(value, annotation, option)
    if origin is list:
        if not isinstance(value, list):
            raise _mismatch(value, annotation, option)
        (item_type,) = get_args(annotation)
        return [convert(item, item_type, f"{option}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise _mismatch(value, annotation, option)
        _, value_type = get_args(annotation)
        return {str(k): convert(v, value_type, f"{option}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise _mismatch(value, annotation, option)
        return build(annotation, value, prefix=f"{option}.")
    raise TypeError(f"option type {annotation!r} of {option} is not supported")  # a plugin bug


def _duration(value: Any, annotation: type[Duration], option: str) -> Duration:
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except ValueError as error:
            if reveals_environment(value):
                raise _mismatch(value, annotation, option) from None
            raise OptionError(option, f"{option}: {error}") from None
    else:
        raise _mismatch(value, annotation, option)
    in_range = seconds > 0 if annotation is PositiveDuration else seconds >= 0
    if not (in_range and math.isfinite(seconds)):
        raise _mismatch(value, annotation, option)
    return annotation(seconds)


SECRET_WORDS = ("password", "secret", "token", "pwd", "credential")


def is_secret(option: str) -> bool:
    """Options whose values are never shown, not even in an error about them."""
    return any(word in option.lower() for word in SECRET_WORDS)


def toml_kind(value: Any) -> str:
    """What a TOML value is, in TOML's words, with its article: "an integer", "a table"."""
    if isinstance(value, bool):
        return "a boolean"
    kinds = {
        str: "a string",
        int: "an integer",
        float: "a float",
        list: "an array",
        dict: "a table",
    }
    return next((kind for cls, kind in kinds.items() if isinstance(value, cls)), "a date or time")


def _mismatch(value: Any, annotation: Any, option: str) -> OptionError:
    shown = toml_kind(value) if isinstance(value, dict | list) else repr(value)
    if isinstance(value, bool):
        shown = "true" if value else "false"
    if is_secret(option):
        shown = f"{toml_kind(value)} (value hidden)"
    elif reveals_environment(str(value)):
        shown = "a value from the environment (not shown)"
    return OptionError(option, f"{option}: expected {_type_name(annotation)}, got {shown}")


# Marks, in a dataclass field's metadata, an option accepted and ignored (see `ignored`).
_IGNORED = "ignored"


def ignored(default: Any) -> Any:
    """A field for an option accepted so that Telegraf's configs load unchanged, with no
    effect here. A config that sets one is told so once, at start-up (`warn_ignored`)."""
    return dataclasses.field(default=default, metadata={_IGNORED: True})


def ignored_in(cls: type, table: dict[str, Any], prefix: str = "") -> list[str]:
    """The keys of `table` that are options `cls` accepts and ignores, each after `prefix`."""
    names = {f.name for f in dataclasses.fields(cls) if f.metadata.get(_IGNORED)}
    return [prefix + key for key in table if key in names]


def warn_ignored(options: typing.Iterable[str], log: logging.Logger) -> None:
    """The one warning naming the options of a config that have no effect here."""
    named = list(dict.fromkeys(options))
    if named:
        log.warning(
            "Options with no effect here, accepted so that Telegraf configs load: %s",
            ", ".join(named),
        )


def option_types(cls: type) -> dict[str, Any]:
    """The options a dataclass declares, by name, with their resolved annotations."""
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def unknown_option(option: str, known: typing.Iterable[str], prefix: str = "") -> OptionError:
    hint = _suggestion(option, list(known))
    return OptionError(prefix + option, f'unknown option "{prefix}{option}"{hint}')


def _suggestion(option: str, known: list[str]) -> str:
    """` (did you mean "X"?)` for the known name closest to `option`, if one is close.

    Two names of lengths a and b are at most 2·min(a, b)/(a + b) alike, so a name more than
    (2 - cutoff)/cutoff times longer than every known one has no close match: it is not
    compared (difflib's work grows with its length times the known names')."""
    import difflib  # only for a config with a mistake in it

    longest = max(map(len, known), default=0)
    if len(option) * SUGGESTION_CUTOFF > longest * (2 - SUGGESTION_CUTOFF):
        return ""
    close = difflib.get_close_matches(option, known, n=1, cutoff=SUGGESTION_CUTOFF)
    return f' (did you mean "{close[0]}"?)' if close else ""


def build(cls: type, table: dict[str, Any], prefix: str = "") -> Any:
    """An instance of dataclass `cls` from a TOML table; every key must be a declared option."""
    known = option_types(cls)
    values = {}
    for key, value in table.items():
        if key not in known:
            raise unknown_option(key, known, prefix)
        values[key] = convert(value, known[key], prefix + key)
    return cls(**values)
