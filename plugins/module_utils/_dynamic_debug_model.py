# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The dynamic debug control file as data: its sites, the queries that select them, flags, and the kernel's matching.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

Everything here mirrors ``lib/dynamic_debug.c`` (and ``match_wildcard`` in ``lib/parser.c``):

* :func:`parse_control` reads the control file (``filename:lineno [module]function =flags "format"``,
  optional `` class:NAME`` / `` class unknown, _id:N``, a ``#`` header; formats escaped ``\\n`` on
  current kernels and ``\\012`` on old ones).
* :func:`site_matches` applies ``ddebug_change``'s rules.

The query text (its parser and builder) is in ``_dynamic_debug_query``, and the control file on a host
(locating, reading, writing, the dynamic_debug_site module's work) in ``_dynamic_debug``.
"""

from __future__ import annotations

import re
import typing as t

CONTROL_HEADER = "# filename:lineno [module]function flags format"

# Flag characters in the order ddebug_describe_flags prints them.  'd' (stack dump) only exists
# on recent kernels; an older kernel rejects it with EINVAL.
FLAG_ORDER = "pmfsltd"
NO_FLAGS = "_"
# A line range's open end (parse_linerange's UINT_MAX).
UINT_MAX = 2**32 - 1

_LINE_RE = re.compile(
    r"^(?P<filename>[^:\s]+):(?P<lineno>\d+) \[(?P<module>[^\]]*)\](?P<function>\S+) =(?P<flags>\S+) "
    r'"(?P<format>.*)"(?: class:(?P<class>\S+)| class unknown, _id:(?P<class_id>-?\d+))?$'
)
_CONTROL_UNESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", '"': '"'}


class Site(t.NamedTuple):
    """One ``pr_debug`` call site as the control file shows it."""

    filename: str
    lineno: int
    module: str
    function: str
    flags: str
    format: str
    """The format with the control file's escapes undone (a real newline, not ``\\n``)."""
    class_name: t.Optional[str] = None
    class_id: t.Optional[int] = None
    """Set when the kernel prints ``class unknown, _id:N``."""

    @property
    def key(self) -> tuple:
        return (self.filename, self.lineno, self.module, self.function, self.format, self.class_name, self.class_id)

    def control_line(self, flags: t.Optional[str] = None) -> str:
        """The site as a control-file line (current kernels' escaping), optionally with other flags."""
        line = f'{self.filename}:{self.lineno} [{self.module}]{self.function} ={flags or self.flags} "{escape_control_format(self.format)}"'
        if self.class_name is not None:
            line += f" class:{self.class_name}"
        elif self.class_id is not None:
            line += f" class unknown, _id:{self.class_id}"
        return line


class Query(t.NamedTuple):
    """The match-specs of one query; ``None`` means "not given".  ``format`` is unescaped text."""

    file: t.Optional[str] = None
    func: t.Optional[str] = None
    module: t.Optional[str] = None
    format: t.Optional[str] = None
    first_lineno: int = 0
    last_lineno: int = 0
    class_name: t.Optional[str] = None

    def describe(self) -> str:
        parts = []
        for name, value in (("file", self.file), ("func", self.func), ("module", self.module)):
            if value is not None:
                parts.append(f"{name} {value}")
        if self.format is not None:
            parts.append(f"format {self.format!r}")
        if self.first_lineno or self.last_lineno:
            parts.append(f"line {describe_line_range(self.first_lineno, self.last_lineno)}")
        if self.class_name is not None:
            parts.append(f"class {self.class_name}")
        return ", ".join(parts) or "(everything)"


# --------------------------------------------------------------------------------------------
# Control file
# --------------------------------------------------------------------------------------------


def unescape_control_format(text: str) -> str:
    """Undo the control file's escaping of a format.

    Current kernels (``seq_escape_str(..., ESCAPE_SPACE, "\\t\\r\\n\\"")``) print ``\\n``, ``\\t``,
    ``\\r``; older ones (``seq_escape``, octal) print ``\\012``, ``\\011``, ``\\015``, ``\\042``.
    The kernel does not escape a backslash itself, so a backslash not followed by one of these is
    kept as it is.
    """
    out = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt in _CONTROL_UNESCAPES:
                out.append(_CONTROL_UNESCAPES[nxt])
                i += 2
                continue
            octal = text[i + 1:i + 4]
            if len(octal) == 3 and all(c in "01234567" for c in octal):
                out.append(chr(int(octal, 8)))
                i += 4
                continue
        out.append(char)
        i += 1
    return "".join(out)


def escape_control_format(text: str) -> str:
    """Escape a format as current kernels print it in the control file."""
    return text.replace("\t", "\\t").replace("\r", "\\r").replace("\n", "\\n")


def parse_control_line(line: str) -> t.Optional[Site]:
    """Parse one control-file line; ``None`` for the ``#`` header or an empty line."""
    line = line.rstrip("\n")
    if not line.strip() or line.startswith("#"):
        return None
    match = _LINE_RE.match(line)
    if match is None:
        raise ValueError(f"unexpected dynamic debug control line: {line!r}")
    class_id = match.group("class_id")
    return Site(
        filename=match.group("filename"),
        lineno=int(match.group("lineno")),
        module=match.group("module"),
        function=match.group("function"),
        flags=canonical_flags(match.group("flags")),
        format=unescape_control_format(match.group("format")),
        class_name=match.group("class"),
        class_id=None if class_id is None else int(class_id),
    )


def parse_control(text: str) -> list:
    """Parse the whole control file into :class:`Site` tuples, in file order."""
    sites = []
    for line in text.splitlines():
        site = parse_control_line(line)
        if site is not None:
            sites.append(site)
    return sites


# --------------------------------------------------------------------------------------------
# Flags
# --------------------------------------------------------------------------------------------


def parse_flags(flags: str) -> frozenset:
    """Turn flag characters (``p``, ``pmf``, ``_`` for none) into a set; reject unknown ones."""
    if not isinstance(flags, str) or flags == "":
        raise ValueError("flags must be one or more of the characters p m f s l t d, or _ for none")
    unknown = sorted({c for c in flags if c not in FLAG_ORDER + NO_FLAGS})
    if unknown:
        raise ValueError(
            f"unknown dynamic debug flag(s) {''.join(unknown)!r} in {flags!r}: use p (print), m (module), f (function),"
            " s (source file), l (line), t (thread id), d (stack dump, recent kernels), or _ for none"
        )
    return frozenset(c for c in flags if c != NO_FLAGS)


def format_flags(flags: t.Iterable) -> str:
    """Print a flag set the way the kernel does (``_`` when empty)."""
    chosen = set(flags)
    return "".join(c for c in FLAG_ORDER if c in chosen) or NO_FLAGS


def canonical_flags(flags: str) -> str:
    """Normalise flags read from the control file (unknown future letters are kept, sorted last)."""
    known = [c for c in FLAG_ORDER if c in flags]
    extra = sorted({c for c in flags if c not in FLAG_ORDER + NO_FLAGS})
    return "".join(known + extra) or NO_FLAGS


def apply_flags(current: str, op: str, flags: t.Iterable) -> str:
    """What ``ddebug_change`` makes of a site's flags: ``(old & mask) | flags``."""
    wanted = set(flags)
    old = set(current) - {NO_FLAGS}
    if op == "+":
        new = old | wanted
    elif op == "-":
        new = old - wanted
    elif op == "=":
        new = wanted
    else:
        raise ValueError(f"bad flag operation {op!r}")
    return canonical_flags("".join(new))


# --------------------------------------------------------------------------------------------
# Matching (ddebug_change)
# --------------------------------------------------------------------------------------------


def match_wildcard(pattern: str, string: str) -> bool:
    """Port of ``match_wildcard`` (lib/parser.c): ``*`` any run, ``?`` one character.

    Kernels before late 2025 skip only one trailing ``*`` at the end (so ``abc**`` does not match
    ``abc``); this port does the same and :func:`validate_plain_value` rejects ``**``.
    """
    s_idx = p_idx = 0
    str_start = pat_start = 0
    star = False
    while s_idx < len(string):
        pch = pattern[p_idx] if p_idx < len(pattern) else ""
        if pch == "?":
            s_idx += 1
            p_idx += 1
        elif pch == "*":
            star = True
            str_start = s_idx
            p_idx += 1
            if p_idx >= len(pattern):
                return True
            pat_start = p_idx
        elif pch and string[s_idx] == pch:
            s_idx += 1
            p_idx += 1
        else:
            if not star:
                return False
            str_start += 1
            s_idx = str_start
            p_idx = pat_start
    if p_idx < len(pattern) and pattern[p_idx] == "*":
        p_idx += 1
    return p_idx >= len(pattern)


def _basename(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def site_matches(query: Query, site: Site) -> bool:
    """Whether the kernel applies ``query`` to ``site`` (the rules of ``ddebug_change``).

    * module, func: wildcard match; file: wildcard match on the path shown or its basename;
    * format: substring of the (unescaped) format, or a prefix when it starts with ``^``;
    * line: ``first``/``last`` bounds, 0 meaning "no bound";
    * class: a query without ``class`` never touches a site that has a class, and a query with
      one only touches sites of that class name.
    """
    if query.module is not None and not match_wildcard(query.module, site.module):
        return False
    if query.class_name is not None:
        if site.class_name != query.class_name:
            return False
    elif site.class_name is not None or site.class_id is not None:
        return False
    if query.file is not None and not (
        match_wildcard(query.file, site.filename) or match_wildcard(query.file, _basename(site.filename))
    ):
        return False
    if query.func is not None and not match_wildcard(query.func, site.function):
        return False
    if query.format is not None:
        if query.format.startswith("^"):
            if not site.format.startswith(query.format[1:]):
                return False
        elif query.format not in site.format:
            return False
    if query.first_lineno and site.lineno < query.first_lineno:
        return False
    if query.last_lineno and site.lineno > query.last_lineno:
        return False
    return True


def describe_line_range(first: int, last: int) -> str:
    if first == last:
        return str(first)
    return f"{first or ''}-{'' if last == UINT_MAX else last}"


__all__ = (
    "CONTROL_HEADER",
    "FLAG_ORDER",
    "NO_FLAGS",
    "Query",
    "Site",
    "UINT_MAX",
    "apply_flags",
    "canonical_flags",
    "describe_line_range",
    "escape_control_format",
    "format_flags",
    "match_wildcard",
    "parse_control",
    "parse_control_line",
    "parse_flags",
    "site_matches",
    "unescape_control_format",
)
