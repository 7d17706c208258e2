"""Telegraf's per-plugin metric filters: namepass/namedrop, tagpass/tagdrop select whole
metrics; fieldinclude/fieldexclude and taginclude/tagexclude trim what a metric carries.

Patterns are globs: `*`, `?`, `[abc]`, `[!abc]` and `{alt1,alt2}`, as Telegraf's filters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from agent.metric import Metric

GLOB_SYNTAX = "*?[{"


def is_glob(text: str) -> bool:
    """True if `text` holds glob syntax (`*`, `?`, `[`, `{`), so it is matched as a pattern;
    otherwise it names one thing and is compared as it is.

    Telegraf counts only `*?[` here, so a lone `{a,b}` is a literal name there unless another
    pattern of the same list has a star; every glob of this agent expands braces."""
    return any(char in text for char in GLOB_SYNTAX)


def glob_to_regex(pattern: str) -> str:
    """Translate one glob into a regular expression body (anchored by the caller)."""
    out: list[str] = []
    i, depth = 0, 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[":
            end = pattern.find("]", i + 2)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = pattern[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        elif char == "{":
            depth += 1
            out.append("(?:")
        elif char == "}" and depth:
            depth -= 1
            out.append(")")
        elif char == "," and depth:
            out.append("|")
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


class Glob:
    """A set of glob patterns; matches a string if any pattern matches all of it."""

    __slots__ = ("_regex", "patterns")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = list(patterns)
        body = "|".join(f"(?:{glob_to_regex(p)})" for p in self.patterns)
        self._regex = re.compile(f"^(?:{body})$", re.DOTALL) if self.patterns else None

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def match(self, text: str) -> bool:
        return self._regex is not None and self._regex.match(text) is not None


@dataclass
class FilterOptions:
    """The filter options every plugin table accepts (Telegraf's names, old and new)."""

    namepass: list[str] = field(default_factory=list)
    namedrop: list[str] = field(default_factory=list)
    fieldpass: list[str] = field(default_factory=list)
    fielddrop: list[str] = field(default_factory=list)
    fieldinclude: list[str] = field(default_factory=list)
    fieldexclude: list[str] = field(default_factory=list)
    tagpass: dict[str, list[str]] = field(default_factory=dict)
    tagdrop: dict[str, list[str]] = field(default_factory=dict)
    taginclude: list[str] = field(default_factory=list)
    tagexclude: list[str] = field(default_factory=list)


class MetricFilter:
    """Compiled filters. `select()` decides whether a metric passes; `modify()` trims it."""

    def __init__(self, options: FilterOptions) -> None:
        self.namepass = Glob(options.namepass)
        self.namedrop = Glob(options.namedrop)
        self.fieldinclude = Glob(options.fieldinclude + options.fieldpass)
        self.fieldexclude = Glob(options.fieldexclude + options.fielddrop)
        self.tagpass = {key: Glob(patterns) for key, patterns in options.tagpass.items()}
        self.tagdrop = {key: Glob(patterns) for key, patterns in options.tagdrop.items()}
        self.taginclude = Glob(options.taginclude)
        self.tagexclude = Glob(options.tagexclude)
        self.selects = bool(self.namepass or self.namedrop or self.tagpass or self.tagdrop)
        self.modifies = bool(
            self.fieldinclude or self.fieldexclude or self.taginclude or self.tagexclude
        )

    def select(self, metric: Metric) -> bool:
        """True if the metric passes namepass/namedrop and tagpass/tagdrop."""
        if not self.selects:
            return True
        if self.namepass and not self.namepass.match(metric.name):
            return False
        if self.namedrop and self.namedrop.match(metric.name):
            return False
        if self.tagpass and not _any_tag_matches(self.tagpass, metric.tags):
            return False
        return not (self.tagdrop and _any_tag_matches(self.tagdrop, metric.tags))

    def modify(self, metric: Metric) -> None:
        """Remove the fields and tags the include/exclude options leave out, in place."""
        if not self.modifies:
            return
        if self.fieldinclude or self.fieldexclude:
            metric.fields = {
                key: value
                for key, value in metric.fields.items()
                if (not self.fieldinclude or self.fieldinclude.match(key))
                and not (self.fieldexclude and self.fieldexclude.match(key))
            }
        if self.taginclude or self.tagexclude:
            metric.tags = {
                key: value
                for key, value in metric.tags.items()
                if (not self.taginclude or self.taginclude.match(key))
                and not (self.tagexclude and self.tagexclude.match(key))
            }


def _any_tag_matches(rules: dict[str, Glob], tags: dict[str, str]) -> bool:
    return any(key in tags and glob.match(tags[key]) for key, glob in rules.items())
