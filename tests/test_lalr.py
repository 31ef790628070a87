"""The lean LALR driver against Lark itself, on a small grammar with every shape it
handles: `?rule`s that pass one child up (a lone token among filtered keywords too),
inlined `_rule`s, optional and repeated parts, brackets across lines, indentation."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from lark import Lark, Token, Tree
from lark.indenter import Indenter

from playbook_engine.lalr import Driver, GiveUp, Pos

GRAMMAR = r"""
start: _NL? item*
?item: block | line
block: NAME ":" _NL _INDENT item+ _DEDENT
line: value ("," value)* _NL
?value: "(" NAME ")"
      | NAME
      | NUMBER -> num
      | "[" [value ("," value)*] "]" -> lst
      | _pair
      | "not" value -> neg
_pair: NAME "=" value
NAME: /[a-z]+/
NUMBER: /[0-9]+/
_NL: /((#[^\n]*)?\r?\n[ \t]*)+/
%ignore /[ \t]+/
%declare _INDENT _DEDENT
"""

TEXTS = [
    "a\n",
    "\n\na, b\n",
    "(a), [1, (b), c = 2]\n",
    "x:\n  a\n  y:\n    not b, []\n  c\n",
    "a, [1,\n  2]\nb\n",
    "x:\n  a = not (b)\n\n# done\n",
    "nothing = [ ]\n",
]
BROKEN = ["a,\n", "x:\nb\n", "x:\n    a\n  b\n", "(a\n", "a)\n", "1 2\n", "A\n", "[a\n"]


class _Indent(Indenter):
    NL_type = "_NL"
    OPEN_PAREN_types: ClassVar[list[str]] = ["LPAR", "LSQB"]
    CLOSE_PAREN_types: ClassVar[list[str]] = ["RPAR", "RSQB"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8


def _lark() -> Lark:
    return Lark(GRAMMAR, parser="lalr", lexer="contextual", postlex=_Indent(),
                propagate_positions=True, maybe_placeholders=False)


def _tree(name: str) -> Any:
    def build(context: object, pos: Pos | None, children: list[Any]) -> tuple[Any, ...]:
        return (name, pos, tuple(_plain(c) for c in children))

    return build


def _plain(value: Any) -> Any:
    if isinstance(value, Token):
        return (value.type, str(value), value.line, value.column, value.end_line,
                value.end_column)
    return value


def _from_lark(tree: Any) -> Any:
    if not isinstance(tree, Tree):
        return _plain(tree)
    meta = tree.meta
    pos = None if meta.empty else (meta.line, meta.column, meta.end_line, meta.end_column)
    return (tree.data, pos, tuple(_from_lark(c) for c in tree.children))


BUILDERS = {name: _tree(name) for name in ("start", "block", "line", "value", "num", "lst", "neg")}


@pytest.mark.parametrize("text", TEXTS)
def test_same_tree_and_positions_as_lark(text: str) -> None:
    lark = _lark()
    assert Driver(lark, BUILDERS).parse(text, None) == _from_lark(lark.parse(text))


@pytest.mark.parametrize("text", BROKEN)
def test_gives_up_where_lark_fails(text: str) -> None:
    lark = _lark()
    with pytest.raises(Exception):  # noqa: B017 - Lark's own errors vary by case
        lark.parse(text)
    with pytest.raises(GiveUp):
        Driver(lark, BUILDERS).parse(text, None)
