"""Griffe extension for the API reference (mkdocs.yml loads it into mkdocstrings).

Two things the docstrings of lightnets say in their own way, read as they are:

- Sphinx roles (``:func:`lightnets.summary```, ``:class:`~lightnets.models.Classifier```)
  become inline code (the ``~`` form keeps the last name), so they read as names rather than
  markup;
- a dataclass whose fields are explained by trailing comments (``TrainConfig``: ``lr: float |
  None = None  # peak learning rate, after warm-up``, continued on comment lines below) gets
  those comments as the descriptions of its parameters, so the reference lists every field
  with its meaning and the source keeps one description of each.
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path
from typing import Any

import griffe

ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|exc|obj|const):`(~?)([^`]+)`")
CONTINUATION = re.compile(r"^\s*#\s{2,}(\S.*)$")  # "#" then an aligned continuation


def plain_roles(text: str) -> str:
    """Sphinx roles to inline code."""
    return ROLE.sub(lambda m: f"`{m.group(2).rsplit('.', 1)[-1] if m.group(1) else m.group(2)}`",
                    text)


def trailing_comment(lines: list[str], first: int, last: int) -> str | None:
    """The comment ending the statement on lines ``first..last`` (1-based), with the aligned
    comment lines continuing it, or ``None``."""
    source = "\n".join(lines[first - 1:last]) + "\n"
    try:
        comments = [token.string for token in tokenize.generate_tokens(io.StringIO(source).readline)
                    if token.type == tokenize.COMMENT]
    except (tokenize.TokenError, SyntaxError):
        return None
    if not comments:
        return None
    parts = [comments[-1].lstrip("#").strip()]
    for line in lines[last:]:
        match = CONTINUATION.match(line)
        if not match:
            break
        parts.append(match.group(1).strip())
    return " ".join(parts)


def is_dataclass(cls: griffe.Class) -> bool:
    return any("dataclass" in str(decorator.value) for decorator in cls.decorators)


class DocstringsAsWritten(griffe.Extension):
    """See the module's docstring."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = plain_roles(obj.docstring.value)

    def on_class_members(self, *, cls: griffe.Class, **kwargs: Any) -> None:
        if not is_dataclass(cls) or cls.filepath is None or isinstance(cls.filepath, list):
            return
        docstring = cls.docstring.value if cls.docstring is not None else ""
        if re.search(r"^(Args|Arguments|Parameters|Attributes):", docstring, re.MULTILINE):
            return  # described in the docstring already
        lines = Path(cls.filepath).read_text().splitlines()
        described, found = [], False
        for name, member in cls.members.items():
            if member.is_alias or not member.is_attribute or not member.lineno:
                continue
            comment = trailing_comment(lines, member.lineno, member.endlineno or member.lineno)
            # every field is listed, in order; "<" escaped: `'<model>-<data>'` is no HTML tag
            described.append(f"    {name}: {plain_roles(comment or '').replace('<', '&lt;')}")
            found = found or bool(comment)
        if not found:
            return
        text = (docstring.rstrip() + "\n\n" if docstring else "") + "Args:\n" + "\n".join(described)
        if cls.docstring is None:
            cls.docstring = griffe.Docstring(text, parent=cls)
        else:
            cls.docstring.value = text
