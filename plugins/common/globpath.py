"""File globs as Telegraf's globpath reads them, for inputs that take paths (`files = [...]`).

`*`, `?`, `[abc]`, `[!abc]` and `{a,b}` match within one path element; `**` matches any
number of directories, none included (`/var/log/**.log` also finds `/var/log/app/x.log`, as
in Telegraf). Unlike a shell, `*` also matches names that start with a dot. A path without
glob characters matches itself if it exists.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from agent.filters import glob_to_regex, is_glob

RECURSIVE = "**"


def match_paths(pattern: str) -> list[str]:
    """The existing paths `pattern` matches (files and directories), sorted, each once."""
    # Telegraf's rule: `**` next to other characters ("**.log") also crosses directories.
    pattern = pattern.replace("**/**", RECURSIVE).replace(RECURSIVE, "**/**")
    root = os.sep if pattern.startswith(os.sep) else ""
    elements: list[str] = []
    for element in pattern.split(os.sep):
        if element and not (element == RECURSIVE and elements[-1:] == [RECURSIVE]):
            elements.append(element)
    return sorted(set(_walk(root, elements)))


def _walk(base: str, elements: list[str]) -> Iterator[str]:
    if not elements:
        if base and os.path.lexists(base):
            yield base
        return
    head, rest = elements[0], elements[1:]
    if head == RECURSIVE:
        yield from _walk(base, rest)
        for name, is_directory in _entries(base):
            path = os.path.join(base, name)
            if is_directory:
                yield from _walk(path, elements)
            elif not rest:  # a final `**` matches the files below too
                yield path
    elif not is_glob(head):
        yield from _walk(os.path.join(base, head), rest)
    else:
        regex = re.compile(glob_to_regex(head), re.DOTALL)
        for name in _names(base):
            if regex.fullmatch(name):
                yield from _walk(os.path.join(base, name), rest)


def _names(directory: str) -> list[str]:
    try:
        return os.listdir(directory or ".")
    except OSError:  # not a directory, gone, or not readable: nothing matches below it
        return []


def _entries(directory: str) -> list[tuple[str, bool]]:
    """The names in `directory`, each with whether to descend into it: a directory, but not
    a symbolic link to one (no endless loops)."""
    try:
        with os.scandir(directory or ".") as entries:
            return [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]
    except OSError:
        return []
