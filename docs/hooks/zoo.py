"""MkDocs hook: the model zoo tables, built from the registry when the site is built.

A page holding ``<!-- zoo-table: TASK -->`` gets there the table ``lightnets list --markdown
--task TASK`` prints (params and MACs from the golden table, models built on the meta device),
and ``<!-- zoo-aliases -->`` the registered aliases. Nothing in the tables is typed by hand, so
they list every registered model as it is.
"""

from __future__ import annotations

import re
import sys
from functools import cache
from pathlib import Path

from mkdocs.exceptions import PluginError

# the checkout beside this file, before any installed lightnets: the site documents this tree
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TABLE = re.compile(r"<!--\s*zoo-table:\s*(\S+)\s*-->")
ALIASES = re.compile(r"<!--\s*zoo-aliases\s*-->")


@cache
def zoo_table(task: str) -> str:
    """The Markdown table of every registered model of ``task``."""
    import lightnets
    from lightnets.cli.list import markdown_table
    from lightnets.profile.model_info import model_info
    from lightnets.registry import TASKS

    if task not in TASKS:
        raise PluginError(f"zoo-table: unknown task {task!r}; expected one of {', '.join(TASKS)}")
    return markdown_table([model_info(name) for name in lightnets.list_models(task=task)])


@cache
def alias_line() -> str:
    """``Aliases: `a` → `b`, ...`` for every registered alias."""
    from lightnets.registry import list_models, resolve_name

    aliases = sorted(set(list_models(include_aliases=True)) - set(list_models()))
    return "Aliases: " + ", ".join(f"`{alias}` → `{resolve_name(alias)}`"
                                   for alias in aliases) + "."


def on_page_markdown(markdown: str, **kwargs: object) -> str:
    markdown = TABLE.sub(lambda match: zoo_table(match.group(1)), markdown)
    return ALIASES.sub(lambda match: alias_line(), markdown)
