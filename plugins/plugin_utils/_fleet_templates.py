# Copyright (c) 2026, netfilter.conntrack contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fleet report's Markdown and HTML pages rendered from Jinja2 templates (the collection's, or the user's own).

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Do not use this from other collections or standalone plugins/modules!

The HTML environment autoescapes every value; the Markdown one escapes through the filter ``md``, which every value
of the collection's template goes through. A user's template gets the same variables (see the conntrack_fleet_files
module) and the same environment, so it escapes the same way.
"""

from __future__ import annotations

import os
import re
import typing as t

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                         "roles", "debug", "templates")
DEFAULT_TEMPLATES = {"markdown": "fleet-summary.md.j2", "html": "fleet-report.html.j2"}
_MD_SPECIAL_RE = re.compile(r"([\\`*_{}\[\]<>|~&])")


def md(value: t.Any) -> str:
    """Text for Markdown (a table cell or a list item): one line, every character Markdown or HTML would act on
    escaped."""
    text = " ".join(str(value if value is not None else "").split())
    return _MD_SPECIAL_RE.sub(r"\\\1", text)


def render(kind: str, context: dict[str, t.Any], template: str | None = None) -> str:
    """The ``kind`` page (markdown or html) from ``template`` (a path; None: the collection's own)."""
    if template:
        directory, name = os.path.split(os.path.abspath(os.path.expanduser(template)))
    else:
        directory, name = TEMPLATES, DEFAULT_TEMPLATES[kind]
    # An HTML page escapes every value; a Markdown file is not HTML, its values go through md instead.
    environment = Environment(loader=FileSystemLoader(directory), undefined=StrictUndefined, trim_blocks=True,
                              lstrip_blocks=True, keep_trailing_newline=True,
                              autoescape=kind == "html")
    environment.filters["md"] = md
    return environment.get_template(name).render(**context)


__all__ = ("DEFAULT_TEMPLATES", "TEMPLATES", "md", "render")
