"""A lean LALR(1) driver over the tables Lark builds: text in, one builder call per node.

Lark's own loop makes a parse tree through a chain of wrappers on every reduction
(positions, child filtering, single-child expansion) and the transformer then walks that
tree again; for 1,000 rules that was most of `playbook check`. This driver runs Lark's
tables, Lark's per-state lexers and the same indentation rules, and calls the builder of
each rule with the children Lark would have kept and the position Lark's
`propagate_positions` would have given: from the first to the last token the reduction
consumed, filtered-out keywords and newlines included.

It handles text that parses, and nothing else: on any problem it raises `GiveUp`, and the
caller asks Lark, whose exceptions the syntax messages are made from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from lark import Lark, Token
from lark.lexer import BasicLexer, ContextualLexer, PatternStr, UnlessCallback
from lark.parsers.lalr_analysis import Shift

# (line, column, end_line, end_column) of a stretch of text, 1-based, end exclusive.
Pos = tuple[int, int, int, int]
Builder = Callable[[Any, Pos | None, list[Any]], Any]


class GiveUp(Exception):
    """The text does not parse (or not the way this driver can follow): ask Lark."""


class Unsupported(Exception):
    """The grammar or parser uses a Lark feature this driver does not reproduce."""


# What a reduction does with its children.
_PASS = 0  # `?rule: x`: the child itself, position and all
_EXPAND1 = 1  # `?rule`: the child itself when only one is kept, else a node
_INLINE = 2  # `_rule` (and Lark's `__x_plus_n`): its children join the parent's
_NODE = 3


class _Lexer:
    """One parser state's lexer: its regexes and the keywords folded into NAME."""

    __slots__ = ("ignore", "keywords", "match", "newline")

    def __init__(self, lexer: BasicLexer) -> None:
        regexes = lexer.scanner._mres
        if len(regexes) != 1:  # Lark splits an alternation past Python's group limit
            raise Unsupported("more than one regex per lexer")
        self.match = regexes[0].match
        self.ignore = lexer.ignore_types
        self.newline = lexer.newline_types
        # Lark lexes `when` as NAME and retypes it when it equals a keyword of the state;
        # for plain strings that test is a dictionary lookup.
        self.keywords: dict[str, dict[str, str]] = {}
        for type_, callback in lexer.callback.items():
            if not isinstance(callback, UnlessCallback):
                raise Unsupported(f"lexer callback on {type_}")
            words: dict[str, str] = {}
            for term in callback.scanner.terminals:
                if not isinstance(term.pattern, PatternStr) or term.pattern.flags:
                    raise Unsupported(f"keyword {term.name}")
                words[term.pattern.value] = term.name
            self.keywords[type_] = words


class _Lexers(dict[int, _Lexer]):
    """Each parser state's lexer, made the first time the state lexes: the regexes of
    states a text never reaches are not compiled (Lark makes them lazily too)."""

    def __init__(self, lexer: ContextualLexer) -> None:
        super().__init__()
        self.basic = lexer.lexers
        self.made: dict[int, _Lexer] = {}  # by id of Lark's lexer: states share them

    def __missing__(self, state: int) -> _Lexer:
        basic = self.basic[state]
        if not isinstance(basic, BasicLexer):
            raise GiveUp(f"lexer {type(basic).__name__}")
        try:
            made = self.made.get(id(basic)) or _Lexer(basic)
        except (Unsupported, AttributeError) as exc:  # AttributeError: Lark's insides moved
            raise GiveUp(str(exc)) from exc
        self.made[id(basic)] = self[state] = made
        return made


class Driver:
    """Lark's LALR tables and lexers for one grammar, driven without a parse tree."""

    def __init__(self, lark: Lark, builders: Mapping[str, Builder]) -> None:
        options = lark.options
        if options.parser != "lalr" or options.lexer != "contextual" or options.maybe_placeholders:
            raise Unsupported("only LALR with the contextual lexer, without placeholders")
        frontend = lark.parser
        lexer = getattr(frontend.lexer, "lexer", None)
        indenter = getattr(frontend.lexer, "postlexer", None)
        if not isinstance(lexer, ContextualLexer) or indenter is None or options.lexer_callbacks:
            raise Unsupported("the contextual lexer with an indenter is expected")
        self.nl_type: str = indenter.NL_type
        self.indent_type: str = indenter.INDENT_type
        self.dedent_type: str = indenter.DEDENT_type
        self.tab_len: int = indenter.tab_len
        self.opening = frozenset(indenter.OPEN_PAREN_types)
        self.closing = frozenset(indenter.CLOSE_PAREN_types)
        # Token() only checks for a deprecated keyword, then calls this: a third of the cost.
        self.token: Callable[..., Token] = getattr(Token, "_future_new", Token)

        if len(options.start) != 1:
            raise Unsupported("more than one start rule")
        table = frontend.parser.parser.parse_table
        self.start_state: int = table.start_states[options.start[0]]
        self.end_state: int = table.end_states[options.start[0]]
        self.lexers = _Lexers(lexer)
        rules: dict[Any, tuple[Any, ...]] = {}
        self.kept: set[str] = set()  # terminals some builder receives as a Token
        self.states: dict[int, dict[str, tuple[bool, Any]]] = {}
        for state, actions in table.states.items():
            row: dict[str, tuple[bool, Any]] = {}
            for symbol, (action, arg) in actions.items():
                if action is Shift:
                    row[symbol] = (True, arg)
                else:
                    if arg not in rules:
                        rules[arg] = self._rule(arg, builders)
                    row[symbol] = (False, rules[arg])
            self.states[state] = row

    def _rule(self, rule: Any, builders: Mapping[str, Builder]) -> tuple[Any, ...]:
        """(size, origin, what to do, kept children as (index, spliced), builder)."""
        options = rule.options
        if options.keep_all_tokens or options.template_source:
            raise Unsupported(f"rule options of {rule.origin.name}")
        include: list[tuple[int, bool]] = []
        for i, symbol in enumerate(rule.expansion):
            if symbol.is_term:
                if not symbol.filter_out:
                    include.append((i, False))
                    self.kept.add(symbol.name)
            else:
                include.append((i, symbol.name.startswith("_")))
        origin = rule.origin.name
        name = rule.alias or origin
        builder = builders.get(name)
        if options.expand1 and not rule.alias:
            if len(rule.expansion) == 1 and include == [(0, False)]:
                mode = _PASS
            else:
                mode = _EXPAND1
                if builder is None and (len(include) > 1 or any(s for _, s in include)):
                    raise Unsupported(f"no builder for {name}")
        elif origin.startswith("_"):
            if rule.alias:
                raise Unsupported(f"an alias on the inlined rule {origin}")
            mode = _INLINE
        else:
            mode = _NODE
            if builder is None:
                raise Unsupported(f"no builder for {name}")
        return (len(rule.expansion), origin, mode, tuple(include), builder)

    def parse(self, text: str, context: Any) -> Any:
        """The start rule's value; `context` is passed to every builder first."""
        table = self.states
        states = [self.start_state]
        values: list[Any] = []
        spans: list[Pos | None] = []

        def feed(type_: str, value: Any, pos: Pos | None) -> None:
            while True:
                action = table[states[-1]].get(type_)
                if action is None:
                    raise GiveUp(type_)
                shift, arg = action
                if shift:
                    states.append(arg)
                    values.append(value)
                    spans.append(pos)
                    return
                if arg[2] == _PASS:
                    # Most reductions are `?rule: x` chains (expr -> ... -> atom): only
                    # the state changes.
                    states[-1] = table[states[-2]][arg[1]][1]
                else:
                    reduce(arg)

        def reduce(rule: tuple[Any, ...]) -> None:
            size, origin, mode, include, builder = rule
            if size:
                raw = values[-size:]
                found = spans[-size:]
                del values[-size:], spans[-size:], states[-size:]
                first, last = found[0], found[-1]
                if first is None or last is None:
                    first = next((f for f in found if f is not None), None)
                    last = next((f for f in reversed(found) if f is not None), None)
                at = None if first is None or last is None else (
                    first[0], first[1], last[2], last[3])
            else:
                raw, at = [], None
            # An inlined rule's list is consumed once: the first one is extended in place
            # (as Lark does), so a long `item+` grows by appends, not copies.
            children: list[Any] | None = None
            for i, splice in include:
                if children is None:
                    children = raw[i] if splice else [raw[i]]
                elif splice:
                    children.extend(raw[i])
                else:
                    children.append(raw[i])
            if children is None:
                children = []
            if mode == _INLINE:
                value: Any = children
            elif mode == _EXPAND1 and len(children) == 1:
                value = children[0]
                if isinstance(value, Token):
                    # Lark passes a lone token up as it is, without the filtered
                    # keywords around it in its position.
                    at = cast(Pos, (value.line, value.column, value.end_line, value.end_column))
            else:
                value = builder(context, at, children)
            states.append(table[states[-1]][origin][1])
            values.append(value)
            spans.append(at)

        self._tokens(text, states, feed)
        while True:
            action = table[states[-1]].get("$END")
            if action is None or action[0]:
                raise GiveUp("$END")
            if action[1][2] == _PASS:
                states[-1] = table[states[-2]][action[1][1]][1]
            else:
                reduce(action[1])
            if states[-1] == self.end_state:
                return values[-1]

    def _tokens(
        self, text: str, states: list[int], feed: Callable[[str, Any, Pos], None]
    ) -> None:
        """Lex `text` in the parser's current state and feed each token, as Lark's
        contextual lexer and `Indenter` do (newlines inside brackets are not line ends)."""
        lexers, kept, nl_type = self.lexers, self.kept, self.nl_type
        at, end, line, line_start = 0, len(text), 1, 0
        indents = [0]
        brackets = 0
        last: Pos | None = None
        while at < end:
            lexer = lexers[states[-1]]
            match = lexer.match(text, at)
            if match is None:
                raise GiveUp("no token")
            value = match.group()
            type_ = match.lastgroup
            assert type_ is not None
            start, start_line, column = at, line, at - line_start + 1
            if type_ in lexer.newline:
                newlines = value.count("\n")
                if newlines:
                    line += newlines
                    line_start = at + value.rindex("\n") + 1
            at = match.end()
            if type_ in lexer.ignore:
                continue
            pos = (start_line, column, line, at - line_start + 1)
            words = lexer.keywords.get(type_)
            if words is not None:
                type_ = words.get(value, type_)
            last = pos
            if type_ == nl_type:
                if brackets:
                    continue
                feed(type_, None, pos)
                indent_text = value.rsplit("\n", 1)[1]
                indent = indent_text.count(" ") + indent_text.count("\t") * self.tab_len
                if indent > indents[-1]:
                    indents.append(indent)
                    feed(self.indent_type, None, pos)
                    continue
                while indent < indents[-1]:
                    indents.pop()
                    feed(self.dedent_type, None, pos)
                if indent != indents[-1]:
                    raise GiveUp("dedent")
                continue
            token = self.token(type_, value, start, pos[0], pos[1], pos[2], pos[3], at) \
                if type_ in kept else None
            feed(type_, token, pos)
            if type_ in self.opening:
                brackets += 1
            elif type_ in self.closing:
                brackets -= 1
                if brackets < 0:
                    raise GiveUp("bracket")
        while len(indents) > 1:
            indents.pop()
            assert last is not None
            feed(self.dedent_type, None, last)
