# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The text of a dynamic debug query: a port of the kernel's parser, and a builder checked with it.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

:func:`kernel_parse_queries` parses as ``ddebug_exec_queries`` does (``string_unescape`` in
``lib/string_helpers.c`` included); :func:`build_query` writes one query whose values cannot start a second
one, and checks that by parsing its own output.
"""

from __future__ import annotations

import re
import typing as t

from ansible_collections.netfilter.conntrack.plugins.module_utils._dynamic_debug_model import (
    FLAG_ORDER,
    NO_FLAGS,
    Query,
    UINT_MAX,
    describe_line_range,
    format_flags,
)
from ansible_collections.netfilter.conntrack.plugins.module_utils._errors import ConntrackModuleError

# ddebug_proc_write: "if (len > USER_BUF_PAGE - 1) return -E2BIG" with USER_BUF_PAGE 4096.
MAX_WRITE = 4095
# ddebug_exec_query: MAXWORDS 9 = 4 match-spec pairs + the flags word.
MAX_WORDS = 9
# Characters a non-format value may hold: printable ASCII without white space, quotes, backslash,
# ';' (query separator), '#' (comment).  The kernel takes these values literally (no unescaping),
# so a value made of them is one unquoted word of one query.
_PLAIN_VALUE_RE = re.compile(r"^[!$%&()*+,\-./0-9:<=>?@A-Z\[\]^_`a-z{|}~]+$")


# --------------------------------------------------------------------------------------------
# Query text: kernel-faithful parser (used to check what we build, and by test fakes)
# --------------------------------------------------------------------------------------------

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
        if not value.isdigit() or int(value) > UINT_MAX:
            raise ValueError(f"bad line-number: {value}")
        return int(value)

    first = lineno(first_text)
    if not dash:
        return first, first
    last = lineno(last_text)
    if last == 0:
        last = UINT_MAX
    if last < first:
        raise ValueError(f"last-line:{last} < 1st-line:{first}")
    return first, last


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
        if first == 0 and last in (0, UINT_MAX):
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


__all__ = (
    "MAX_WORDS",
    "MAX_WRITE",
    "build_query",
    "kernel_parse_queries",
    "kernel_unescape",
    "make_query",
    "match_spec_text",
    "parse_line_range",
    "quote_format",
    "validate_format",
    "validate_plain_value",
)
