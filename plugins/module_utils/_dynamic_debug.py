# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Read, match and write the kernel's dynamic debug control file.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

Everything here mirrors ``lib/dynamic_debug.c`` (and ``match_wildcard`` in ``lib/parser.c``,
``string_unescape`` in ``lib/string_helpers.c``) so that the module can predict, without writing,
which sites a query changes:

* :func:`parse_control` reads the control file (``filename:lineno [module]function =flags "format"``,
  optional `` class:NAME`` / `` class unknown, _id:N``, a ``#`` header; formats escaped ``\\n`` on
  current kernels and ``\\012`` on old ones).
* :func:`site_matches` applies ``ddebug_change``'s rules.
* :func:`build_query` writes one query whose values cannot start a second one, and checks that by
  parsing its own output with :func:`kernel_parse_queries`, a port of the kernel's parser.
"""

from __future__ import annotations

import errno
import os
import re
import typing as t

from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError

PROC_CONTROL = "/proc/dynamic_debug/control"
DEBUGFS_DEFAULT_MOUNT = "/sys/kernel/debug"
CONTROL_HEADER = "# filename:lineno [module]function flags format"

# ddebug_proc_write: "if (len > USER_BUF_PAGE - 1) return -E2BIG" with USER_BUF_PAGE 4096.
MAX_WRITE = 4095
# ddebug_exec_query: MAXWORDS 9 = 4 match-spec pairs + the flags word.
MAX_WORDS = 9
# Flag characters in the order ddebug_describe_flags prints them.  'd' (stack dump) only exists
# on recent kernels; an older kernel rejects it with EINVAL.
FLAG_ORDER = "pmfsltd"
NO_FLAGS = "_"
MATCH_KEYWORDS = ("file", "func", "module", "format", "line", "class")

# Characters a non-format value may hold: printable ASCII without white space, quotes, backslash,
# ';' (query separator), '#' (comment).  The kernel takes these values literally (no unescaping),
# so a value made of them is one unquoted word of one query.
_PLAIN_VALUE_RE = re.compile(r"^[!$%&()*+,\-./0-9:<=>?@A-Z\[\]^_`a-z{|}~]+$")

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


# --------------------------------------------------------------------------------------------
# Query text: kernel-faithful parser (used to check what we build, and by test fakes)
# --------------------------------------------------------------------------------------------

_UINT_MAX = 2**32 - 1
_KERNEL_SPACE = " \t\n\v\f\r"


def kernel_unescape(text: str) -> str:
    """``string_unescape_inplace(UNESCAPE_SPACE | UNESCAPE_OCTAL | UNESCAPE_SPECIAL)``."""
    out = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt in "nrtvf":
                out.append({"n": "\n", "r": "\r", "t": "\t", "v": "\v", "f": "\f"}[nxt])
                i += 2
                continue
            if nxt in "01234567":
                j = i + 1
                digits = ""
                while j < len(text) and len(digits) < 3 and text[j] in "01234567":
                    digits += text[j]
                    j += 1
                out.append(chr(int(digits, 8) & 0xFF))
                i = j
                continue
            if nxt in '"\\':
                out.append(nxt)
                i += 2
                continue
            if nxt == "a":
                out.append("\a")
                i += 2
                continue
            if nxt == "e":
                out.append("\x1b")
                i += 2
                continue
            out.append("\\")
            i += 1
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


def _kernel_tokenize(text: str) -> list:
    words = []
    i = 0
    while i < len(text):
        while i < len(text) and text[i] in _KERNEL_SPACE:
            i += 1
        if i >= len(text) or text[i] == "#":
            break
        if text[i] in "\"'":
            quote = text[i]
            end = text.find(quote, i + 1)
            if end < 0:
                raise ValueError(f"unclosed quote: {text[i + 1:]}")
            word, i = text[i + 1:end], end + 1
        else:
            end = i
            while end < len(text) and text[end] not in _KERNEL_SPACE:
                end += 1
            word, i = text[i:end], end + 1
        if len(words) == MAX_WORDS:
            raise ValueError(f"too many words, legal max <={MAX_WORDS}")
        words.append(word)
    return words


def parse_line_range(text: str) -> tuple:
    """``parse_linerange``: ``N``, ``N-M``, ``-N``, ``N-`` into (first, last); 0 means no bound."""
    first_text, dash, last_text = text.partition("-")

    def lineno(value: str) -> int:
        if value == "":
            return 0
        if not value.isdigit() or int(value) > _UINT_MAX:
            raise ValueError(f"bad line-number: {value}")
        return int(value)

    first = lineno(first_text)
    if not dash:
        return first, first
    last = lineno(last_text)
    if last == 0:
        last = _UINT_MAX
    if last < first:
        raise ValueError(f"last-line:{last} < 1st-line:{first}")
    return first, last


def describe_line_range(first: int, last: int) -> str:
    if first == last:
        return str(first)
    return f"{first or ''}-{'' if last == _UINT_MAX else last}"


def _kernel_parse_query(words: list) -> Query:
    if len(words) % 2:
        raise ValueError("expecting pairs of match-spec <value>")
    found: dict = {}
    lines = None

    def set_once(name: str, value: str) -> None:
        if name in found:
            raise ValueError(f"match-spec:{name} val:{found[name]} overridden by {value}")
        found[name] = value

    def set_lines(value: str) -> None:
        nonlocal lines
        if lines is not None:
            raise ValueError("match-spec: line used 2x")
        lines = parse_line_range(value)

    for keyword, arg in zip(words[::2], words[1::2]):
        if keyword == "func":
            set_once("func", arg)
        elif keyword == "file":
            name, colon, tail = arg.partition(":")
            set_once("file", name)
            if colon:
                if tail[:1].isalpha() or tail[:1] in ("*", "?"):
                    set_once("func", tail)
                else:
                    set_lines(tail)
        elif keyword == "module":
            set_once("module", arg)
        elif keyword == "format":
            set_once("format", kernel_unescape(arg))
        elif keyword == "line":
            set_lines(arg)
        elif keyword == "class":
            set_once("class", arg)
        else:
            raise ValueError(f'unknown keyword "{keyword}"')
    first, last = lines or (0, 0)
    return Query(
        file=found.get("file"),
        func=found.get("func"),
        module=found.get("module"),
        format=found.get("format"),
        first_lineno=first,
        last_lineno=last,
        class_name=found.get("class"),
    )


def _kernel_parse_flags(word: str) -> tuple:
    if not word or word[0] not in "+-=":
        raise ValueError(f"bad flag-op {word[:1]}, at start of {word}")
    flags = word[1:]
    for char in flags:
        if char not in FLAG_ORDER + NO_FLAGS:
            raise ValueError(f"unknown flag '{char}'")
    return word[0], frozenset(c for c in flags if c != NO_FLAGS)


def kernel_parse_queries(text: str) -> list:
    """Parse a write to the control file like ``ddebug_exec_queries`` does.

    Returns a list of ``(Query, op, flags)``, one per query; a query the kernel would reject
    is returned as ``(None, None, ValueError)`` because the kernel goes on with the next one.
    """
    queries = []
    for chunk in re.split(r"[;\n]", text):
        chunk = chunk.lstrip(_KERNEL_SPACE)
        if not chunk or chunk.startswith("#"):
            continue
        try:
            words = _kernel_tokenize(chunk)
            if not words:
                raise ValueError("tokenize failed")
            op, flags = _kernel_parse_flags(words[-1])
            queries.append((_kernel_parse_query(words[:-1]), op, flags))
        except ValueError as exc:
            queries.append((None, None, exc))
    return queries


# --------------------------------------------------------------------------------------------
# Query building and validation
# --------------------------------------------------------------------------------------------


def validate_plain_value(name: str, value: str) -> str:
    """Check a file/func/module/class value the kernel takes literally (one unquoted word)."""
    if not isinstance(value, str) or value == "":
        raise ConntrackModuleError(f"{name} must be a non-empty string")
    bad = sorted({c for c in value if not _PLAIN_VALUE_RE.match(c)})
    if bad:
        raise ConntrackModuleError(
            f"{name} {value!r} contains {', '.join(repr(c) for c in bad)}: white space, quotes, backslashes, ';' and"
            " '#' would end the value or start another query in the control file, and the kernel does not"
            " unescape this keyword",
            rejected=name,
        )
    if name == "file" and ":" in value:
        raise ConntrackModuleError(
            f"file {value!r} contains ':': the kernel reads 'file NAME:FUNC' and 'file NAME:LINES' as a function or"
            " line range; use the func or line option instead",
            rejected=name,
        )
    if "**" in value:
        raise ConntrackModuleError(
            f"{name} {value!r} contains '**': a single '*' already matches any run of characters (and kernels"
            " before 6.18 mishandle a trailing '**')",
            rejected=name,
        )
    return value


def quote_format(text: str) -> str:
    """Quote a format search string so the kernel parses back exactly ``text``.

    The value goes inside double quotes; everything but plain printable ASCII is written as a
    three-digit octal escape, which ``string_unescape`` turns back into the byte, so no raw
    newline, ';', '#', quote or backslash ever reaches the kernel's splitter or tokenizer.
    """
    out = ['"']
    for byte in text.encode("utf-8"):
        char = chr(byte)
        if 0x20 <= byte < 0x7F and char not in "\"'\\;#":
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    out.append('"')
    return "".join(out)


def validate_format(text: str) -> str:
    if not isinstance(text, str) or text == "" or text == "^":
        raise ConntrackModuleError("format must be a non-empty search text (a leading ^ anchors it at the start)")
    if "\0" in text:
        raise ConntrackModuleError("format contains a NUL character, which the kernel cannot match", rejected="format")
    if not text.isascii():
        raise ConntrackModuleError(f"format {text!r} contains non-ASCII characters; kernel formats are ASCII", rejected="format")
    return text


def make_query(
    file: t.Optional[str] = None,
    func: t.Optional[str] = None,
    module: t.Optional[str] = None,
    format: t.Optional[str] = None,
    line: t.Optional[str] = None,
    class_name: t.Optional[str] = None,
) -> Query:
    """Validate the options and turn them into a :class:`Query`.

    ``format`` is unescaped the way the kernel unescapes a query's format (``\\n``, ``\\t``,
    ``\\012``, ``\\"``, ``\\\\``), so a format copied from the control file matches.
    """
    if all(v is None for v in (file, func, module, format, line, class_name)):
        raise ConntrackModuleError("give at least one of file, func, module, format, line or class")
    first = last = 0
    if line is not None:
        line = str(line).strip()
        try:
            first, last = parse_line_range(line)
        except ValueError as exc:
            raise ConntrackModuleError(
                f"line {line!r} is not a line number or range (N, N-M, -N, N-): {exc}", rejected="line"
            ) from exc
        if first == 0 and last in (0, _UINT_MAX):
            raise ConntrackModuleError(f"line {line!r} selects no line (0 means 'any line' to the kernel)", rejected="line")
    return Query(
        file=None if file is None else validate_plain_value("file", file),
        func=None if func is None else validate_plain_value("func", func),
        module=None if module is None else validate_plain_value("module", module),
        format=None if format is None else validate_format(kernel_unescape(format)),
        first_lineno=first,
        last_lineno=last,
        class_name=None if class_name is None else validate_plain_value("class", class_name),
    )


def match_spec_text(query: Query) -> str:
    """The match-specs of ``query`` as control-file words (no flags)."""
    specs = []
    line = describe_line_range(query.first_lineno, query.last_lineno) if (query.first_lineno or query.last_lineno) else None
    fold_line = line is not None and query.file is not None
    # The kernel reads the tail after ':' as a function only when it starts with a letter, '*' or '?'.
    fold_func = (
        not fold_line and query.func is not None and query.file is not None and (query.func[0].isalpha() or query.func[0] in "*?")
    )
    count = sum(v is not None for v in (query.file, query.func, query.module, query.format, line, query.class_name))
    # 4 pairs + flags = MAXWORDS; a fifth spec fits only folded into "file NAME:LINES|FUNC".
    if count * 2 + 1 > MAX_WORDS and (fold_line or fold_func) and (count - 1) * 2 + 1 <= MAX_WORDS:
        if fold_line:
            specs.append(f"file {query.file}:{line}")
            line = None
        else:
            specs.append(f"file {query.file}:{query.func}")
            query = query._replace(func=None)
    elif query.file is not None:
        specs.append(f"file {query.file}")
    if query.func is not None:
        specs.append(f"func {query.func}")
    if query.module is not None:
        specs.append(f"module {query.module}")
    if query.format is not None:
        specs.append(f"format {quote_format(query.format)}")
    if line is not None:
        specs.append(f"line {line}")
    if query.class_name is not None:
        specs.append(f"class {query.class_name}")
    if len(specs) * 2 + 1 > MAX_WORDS:
        raise ConntrackModuleError(
            f"the kernel accepts at most {(MAX_WORDS - 1) // 2} match-specs per query; drop one of file, func,"
            " module, format, line, class (a file with a line range or function counts once)"
        )
    return " ".join(specs)


def build_query(query: Query, op: str, flags: t.Iterable) -> str:
    """The exact text to write: one query, checked by parsing it back the kernel's way."""
    text = f"{match_spec_text(query)} {op}{format_flags(flags)}"
    size = len(text.encode("utf-8"))
    if size > MAX_WRITE:
        raise ConntrackModuleError(
            f"the query is {size} bytes; the kernel accepts at most {MAX_WRITE} bytes per write (shorten format)"
        )
    parsed = kernel_parse_queries(text)
    expected = (query, op, frozenset(flags))
    if len(parsed) != 1 or parsed[0] != expected:
        raise ConntrackModuleError(f"internal error: the query {text!r} would not parse back as one query", query=text)
    return text


# --------------------------------------------------------------------------------------------
# Locating, reading and writing the control file
# --------------------------------------------------------------------------------------------


def debugfs_mounts(mounts_text: str) -> list:
    """Mount points of debugfs in a ``/proc/self/mounts`` text (octal escapes undone)."""
    points = []
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == "debugfs":
            points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[1]))
    return points


def kernel_has_dynamic_debug(kallsyms_lines: t.Iterable) -> t.Optional[bool]:
    """Look for the control file's write handler in ``/proc/kallsyms`` lines; None when unknowable."""
    seen_any = False
    for line in kallsyms_lines:
        seen_any = True
        fields = line.split()
        if len(fields) >= 3 and fields[2] in ("ddebug_proc_write", "ddebug_exec_queries"):
            return True
    return False if seen_any else None


def _read_text(path: str) -> t.Optional[str]:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            return handle.read()
    except OSError:
        return None


def _kallsyms_says() -> t.Optional[bool]:
    try:
        with open("/proc/kallsyms", encoding="utf-8", errors="replace") as handle:
            return kernel_has_dynamic_debug(handle)
    except OSError:
        return None


def locate_control(mounts_text: str, exists: t.Callable = os.path.exists, has_ddebug: t.Optional[bool] = None) -> tuple:
    """Find the control file.  Returns ``(path, None)`` or ``(None, reason)``.

    ``reason`` is ``"no-dynamic-debug"`` or ``"debugfs-not-mounted"``.
    """
    if exists(PROC_CONTROL):
        return PROC_CONTROL, None
    mounts = debugfs_mounts(mounts_text)
    for point in mounts:
        candidate = os.path.join(point, "dynamic_debug", "control")
        if exists(candidate):
            return candidate, None
    if mounts or has_ddebug is False:
        return None, "no-dynamic-debug"
    return None, "debugfs-not-mounted"


def locate_control_here() -> tuple:
    """locate_control on this host: without a debugfs mount, /proc/kallsyms tells whether the kernel has dynamic
    debug at all, so an unmounted debugfs is not mistaken for a control file that might exist."""
    path, reason = locate_control(_read_text("/proc/self/mounts") or "")
    if reason == "debugfs-not-mounted" and _kallsyms_says() is False:
        reason = "no-dynamic-debug"
    return path, reason


NO_DYNAMIC_DEBUG_MSG = (
    "this kernel has no dynamic debug (CONFIG_DYNAMIC_DEBUG is not set): neither "
    + PROC_CONTROL
    + " nor <debugfs>/dynamic_debug/control exists"
)


def find_control(mount_debugfs: t.Callable = None) -> tuple:
    """Locate the control file on this host; returns ``(path, mounted_debugfs_path_or_None)``.

    ``mount_debugfs`` is called (with the mount point) when only an unmounted debugfs could hold the
    file; when it is ``None`` that situation is an error.
    """
    path, reason = locate_control_here()
    if path is not None:
        return path, None
    if reason == "no-dynamic-debug":
        raise ConntrackModuleError(NO_DYNAMIC_DEBUG_MSG, reason=reason)
    if mount_debugfs is None:
        raise ConntrackModuleError(
            f"debugfs is not mounted and {PROC_CONTROL} does not exist: this kernel only offers dynamic debug in"
            f" debugfs; set mount_debugfs=true or run 'mount -t debugfs none {DEBUGFS_DEFAULT_MOUNT}'",
            reason="debugfs-not-mounted",
        )
    mount_debugfs(DEBUGFS_DEFAULT_MOUNT)
    candidate = os.path.join(DEBUGFS_DEFAULT_MOUNT, "dynamic_debug", "control")
    if not os.path.exists(candidate):
        raise ConntrackModuleError(
            NO_DYNAMIC_DEBUG_MSG + f" (debugfs is now mounted at {DEBUGFS_DEFAULT_MOUNT})", reason="no-dynamic-debug"
        )
    return candidate, DEBUGFS_DEFAULT_MOUNT


def read_control(path: str) -> list:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as handle:
            text = handle.read()
    except FileNotFoundError as exc:
        raise ConntrackModuleError(f"{path} does not exist (is this the dynamic debug control file?)") from exc
    except PermissionError as exc:
        raise ConntrackModuleError(f"cannot read {path}: permission denied (dynamic debug needs root)") from exc
    except OSError as exc:
        raise ConntrackModuleError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return parse_control(text)
    except ValueError as exc:
        raise ConntrackModuleError(f"{path} does not look like a dynamic debug control file: {exc}") from exc


def write_control(path: str, query: str) -> None:
    """Write ``query`` in one ``write()``, as the kernel parses per write call."""
    data = query.encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _write_error(path, query, exc) from exc
    try:
        written = os.write(fd, data)
    except OSError as exc:
        raise _write_error(path, query, exc) from exc
    finally:
        os.close(fd)
    if written != len(data):
        raise ConntrackModuleError(f"short write to {path}: {written} of {len(data)} bytes of {query!r}", query=query)


def _write_error(path: str, query: str, exc: OSError) -> ConntrackModuleError:
    if exc.errno == errno.EINVAL:
        return ConntrackModuleError(
            f"the kernel rejected the query {query!r} written to {path} (EINVAL); the kernel log (dmesg) says why,"
            " e.g. an unknown flag or class on this kernel",
            query=query,
        )
    if exc.errno in (errno.EPERM, errno.EACCES):
        return ConntrackModuleError(
            f"cannot write {path}: {exc.strerror} (dynamic debug needs root, and a locked-down kernel or a read-only"
            " /proc in a container refuses it)",
            query=query,
        )
    if exc.errno == errno.E2BIG:
        return ConntrackModuleError(f"the query {query!r} is too long for {path} (E2BIG)", query=query)
    return ConntrackModuleError(f"cannot write {query!r} to {path}: {exc.strerror}", query=query)


# The module states that write, and the control-file operation each writes.
OPERATIONS = {"enabled": "+", "disabled": "-", "exact": "="}
NEAR_MISS_LIMIT = 8
# dynamic_debug_site's option defaults, for callers that give only some options.
SITE_DEFAULTS = {"file": None, "func": None, "module": None, "format": None, "line": None, "class": None, "flags": "p",
                 "state": "enabled", "control_path": None, "mount_debugfs": False, "require_match": True}


class _WouldMount(Exception):
    pass


def site_result(site, flags_after: str) -> dict:
    restore = {"file": site.filename, "line": site.lineno, "func": site.function, "flags": site.flags, "state": "exact"}
    if site.class_name is not None:
        restore["class"] = site.class_name
    return {
        "filename": site.filename,
        "lineno": site.lineno,
        "module": site.module,
        "function": site.function,
        "format": escape_control_format(site.format),
        "class": site.class_name,
        "flags_before": site.flags,
        "flags_after": flags_after,
        "restore": restore,
    }


def no_match_message(query: Query, sites: list, path: str) -> str:
    modules = sorted({s.module for s in sites})
    msg = (
        f"no dynamic debug site matches {query.describe()}: searched {len(sites)} sites of {len(modules)} modules"
        f" in {path}"
    )
    if query.module is not None and not any(site_matches(Query(module=query.module), s._replace(class_name=None, class_id=None)) for s in sites):
        msg += f"; no site belongs to module {query.module} (is it loaded? try modprobe {query.module})"
    # Sites that match every criterion but one: usually a renamed function or a moved line.
    criteria = {
        "file": {"file": None},
        "func": {"func": None},
        "module": {"module": None},
        "format": {"format": None},
        "line": {"first_lineno": 0, "last_lineno": 0},
        "class": {"class_name": None},
    }
    for name, cleared in criteria.items():
        relaxed = query._replace(**cleared)
        if relaxed == query or relaxed == Query():
            continue
        near = [s for s in sites if site_matches(relaxed, s)]
        if near:
            shown = "; ".join(s.control_line() for s in near[:NEAR_MISS_LIMIT])
            more = f" (and {len(near) - NEAR_MISS_LIMIT} more)" if len(near) > NEAR_MISS_LIMIT else ""
            msg += f". Without the {name} criterion these match: {shown}{more}"
            break
    return msg


class SiteRequest(t.NamedTuple):
    """One dynamic_debug_site query, validated: what it selects, what it writes and where."""

    query: Query
    op: t.Optional[str]
    """The control-file operation; None for state=query (read only)."""
    flags: frozenset
    text: str
    """The exact text written (state=query: its match-specs)."""
    control_path: t.Optional[str]
    mount_debugfs: bool
    require_match: bool


def parse_site(options: dict) -> SiteRequest:
    """Validate dynamic_debug_site's options (missing ones take its defaults) and build the query, touching nothing."""
    params = dict(SITE_DEFAULTS, **{key: value for key, value in options.items() if value is not None})
    try:
        flags = parse_flags(params["flags"])
    except ValueError as exc:
        raise ConntrackModuleError(str(exc)) from exc
    line = params["line"]
    if line is not None and (isinstance(line, bool) or not isinstance(line, (int, str))):
        raise ConntrackModuleError(f"line must be a number or a range such as 100-200, not {line!r}")
    query = make_query(
        file=params["file"],
        func=params["func"],
        module=params["module"],
        format=params["format"],
        line=None if line is None else str(line),
        class_name=params["class"],
    )
    op = OPERATIONS.get(params["state"])
    text = match_spec_text(query) if op is None else build_query(query, op, flags)
    return SiteRequest(query, op, flags, text, params["control_path"], bool(params["mount_debugfs"]),
                       bool(params["require_match"]))


def _site_control(host, request: SiteRequest, result: dict) -> t.Optional[str]:
    """The control file to use; None in check mode when debugfs would have to be mounted first (result says so)."""
    if request.control_path is not None:
        return request.control_path

    def mounter(point: str) -> None:
        if host.check_mode:
            raise _WouldMount(point)
        binary = host.which("mount", ["/usr/bin", "/bin"])
        if binary is None:
            raise ConntrackModuleError("debugfs must be mounted but the mount command is not installed")
        argv = [binary, "-t", "debugfs", "debugfs", point]
        rc, out, err = host.run(argv)
        if rc != 0:
            raise ConntrackModuleError(
                f"cannot mount debugfs at {point}: {err.strip() or out.strip()}", rc=rc, stdout=out, stderr=err, cmd=argv
            )
        result["mounted_debugfs"] = point

    try:
        return host.kernel.find_control(mounter if request.mount_debugfs else None)[0]
    except _WouldMount as would:
        result.update(changed=True, control_path=None, mounted_debugfs=str(would))
        host.warn(f"debugfs would be mounted at {would}; the matching sites cannot be listed in check mode")
        return None


def _write_site(host, request: SiteRequest, path: str, sites: list, matched: list, wanted: list) -> None:
    """Write the query, and check that the kernel reads back what was predicted for every site."""
    host.kernel.write_control(path, request.text)
    after = {s.key: s for s in read_control(path)}
    wrong = []
    for site, want in zip(matched, wanted):
        now = after.get(site.key)
        if now is None:
            wrong.append(f"{site.filename}:{site.lineno} [{site.module}]{site.function} disappeared (module unloaded?)")
        elif now.flags != want:
            wrong.append(f"{site.filename}:{site.lineno} [{site.module}]{site.function} reads ={now.flags}, wanted ={want}")
    if wrong:
        raise ConntrackModuleError(
            f"wrote {request.text!r} to {path} but the kernel reads back: " + "; ".join(wrong),
            query=request.text,
            control_path=path,
        )
    matched_keys = {s.key for s in matched}
    surprises = [s for s in sites if s.key not in matched_keys and s.key in after and after[s.key].flags != s.flags]
    if surprises:
        host.warn(
            f"the query also changed {len(surprises)} site(s) this module did not predict (or something else changed"
            f" them meanwhile), e.g. {surprises[0].control_line()}"
        )


def apply_site(host, request: SiteRequest) -> dict:
    """Apply one parsed dynamic_debug_site query.

    Returns the module's result: changed, query, written, sites, control_path, mounted_debugfs, diff (diff mode).
    """
    result: dict = {"changed": False, "query": request.text, "written": False, "sites": []}
    path = _site_control(host, request, result)
    if path is None:
        return result
    result["control_path"] = path

    sites = read_control(path)
    matched = [s for s in sites if site_matches(request.query, s)]
    if not matched:
        if request.require_match:
            raise ConntrackModuleError(no_match_message(request.query, sites, path), query=request.text,
                                       control_path=path)
        return result

    op = request.op
    wanted = [apply_flags(s.flags, op, request.flags) if op else s.flags for s in matched]
    result["changed"] = any(s.flags != w for s, w in zip(matched, wanted))
    if result["changed"] and not host.check_mode:
        _write_site(host, request, path, sites, matched, wanted)
        result["written"] = True

    result["sites"] = [site_result(s, w) for s, w in zip(matched, wanted)]
    if host.diff:
        result["diff"] = {
            "before": "".join(s.control_line() + "\n" for s in matched),
            "after": "".join(s.control_line(w) + "\n" for s, w in zip(matched, wanted)),
        }
    return result


def set_site(host, options: dict) -> dict:
    """dynamic_debug_site: parse_site, then apply_site."""
    return apply_site(host, parse_site(options))


__all__ = (
    "CONTROL_HEADER",
    "OPERATIONS",
    "SITE_DEFAULTS",
    "FLAG_ORDER",
    "MAX_WRITE",
    "NO_DYNAMIC_DEBUG_MSG",
    "PROC_CONTROL",
    "Query",
    "Site",
    "SiteRequest",
    "apply_flags",
    "apply_site",
    "build_query",
    "canonical_flags",
    "debugfs_mounts",
    "describe_line_range",
    "escape_control_format",
    "find_control",
    "format_flags",
    "kernel_has_dynamic_debug",
    "kernel_parse_queries",
    "kernel_unescape",
    "locate_control",
    "locate_control_here",
    "make_query",
    "match_spec_text",
    "match_wildcard",
    "parse_control",
    "parse_control_line",
    "parse_flags",
    "parse_line_range",
    "parse_site",
    "quote_format",
    "read_control",
    "set_site",
    "site_matches",
    "validate_plain_value",
    "write_control",
)
