"""Constant arguments Kamailio checks only at start-up, or never (E0406..E0409).

``kamailio -c`` parses the config but runs no fixup, so a reply code of 700, a regular
expression that does not compile or a next hop ``host:port`` that does not parse are
found only when the proxy starts (or when the first message takes that path). kcc
checks them when they are written as constants (a literal, or a define expanding to
one); a value that contains a pseudo-variable is only known per message.

- E0406: an argument of ``ArgKind.REPLY_CODE`` outside 100..699;
- E0407: a regular expression that glibc's ``regcomp`` (``REG_EXTENDED|REG_ICASE|
  REG_NOSUB``, what Kamailio uses) rejects: ``ArgKind.REGEX`` arguments, the string on
  the right of ``=~`` and ``case /"re":`` labels. :func:`posix_ere_error` is a
  validator for POSIX extended regular expressions with glibc's extensions; Python's
  ``re`` is not used, its syntax differs (``\\d``, ``(?:``, ``{,n}``, a lone ``)``);
- E0408: an argument of ``ArgKind.HOSTPORT`` that is not ``[proto:]host[:port]``;
- E0409: a counter name given to ``cnt_inc``/``cnt_add``/``cnt_reset`` that no
  ``modparam("counters", "script_counter", ...)`` declares (measured: Kamailio 5.6
  refuses to start, ``counter script.nope does not exist (forgot to define it?)``,
  while ``kamailio -c`` accepts the config).
"""

from __future__ import annotations

from dataclasses import dataclass

from kcc_runtime.exports import ArgKind
from kcc_runtime.modules.counters import DEFAULT_GROUP, counter_name, declared_names

from kcc import ast
from kcc.diagnostics import Diagnostic
from kcc.sema.context import SemaContext, iter_nodes

__all__ = ["RegexError", "check", "hostport_error", "posix_ere_error"]

#: glibc's RE_DUP_MAX: the largest count in ``{n,m}``
RE_DUP_MAX = 0x7FFF

CHAR_CLASSES = frozenset(
    {
        "alpha",
        "upper",
        "lower",
        "digit",
        "xdigit",
        "space",
        "print",
        "punct",
        "graph",
        "cntrl",
        "blank",
        "alnum",
    }
)

PROTOCOLS = frozenset({"udp", "tcp", "tls", "sctp", "ws", "wss"})


@dataclass(frozen=True, slots=True)
class RegexError:
    """Why a regular expression does not compile; ``pos`` indexes the pattern."""

    message: str
    pos: int


class _ReError(Exception):
    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.error = RegexError(message, pos)


class _EreParser:
    """Recursive descent over a POSIX ERE the way glibc's ``regcomp`` reads it."""

    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0
        self.groups = 0
        #: groups closed so far that a back-reference may name (reset per alternative)
        self.completed: set[int] = set()

    def peek(self) -> str:
        return self.p[self.i] if self.i < len(self.p) else ""

    def parse(self) -> None:
        self.reg_exp(depth=0)
        if self.i < len(self.p):  # pragma: no cover - reg_exp consumes everything at depth 0
            raise _ReError("unexpected character", self.i)

    def reg_exp(self, depth: int) -> None:
        initial = set(self.completed)
        self.branch(depth)
        while self.peek() == "|":
            self.i += 1
            self.completed = set(initial)
            self.branch(depth)

    def branch(self, depth: int) -> None:
        while True:
            c = self.peek()
            if c in {"", "|"} or (c == ")" and depth > 0):
                return
            self.expression(depth)

    def expression(self, depth: int) -> None:
        start = self.i
        c = self.peek()
        repeatable = True
        if c in "*+?{":
            what = "{" if c == "{" else c
            raise _ReError(f"`{what}` has nothing before it to repeat", start)
        if c == "(":
            self.i += 1
            if self.peek() in ("*", "+", "?", "{"):
                raise _ReError(f"`{self.peek()}` has nothing before it to repeat", self.i)
            self.groups += 1
            number = self.groups
            self.reg_exp(depth + 1)
            if self.peek() != ")":
                raise _ReError("this `(` is never closed", start)
            self.i += 1
            self.completed.add(number)
        elif c == "[":
            self.bracket()
        elif c == "\\":
            if self.i + 1 >= len(self.p):
                raise _ReError("trailing backslash", self.i)
            nxt = self.p[self.i + 1]
            # glibc's word-boundary and buffer anchors
            repeatable = nxt not in "bB<>`'"
            if nxt in "123456789" and int(nxt) not in self.completed:
                raise _ReError(f"back-reference `\\{nxt}` names no group closed before it", self.i)
            self.i += 2
        elif c in "^$":
            self.i += 1
            repeatable = False
        else:
            self.i += 1
        while self.peek() in ("*", "+", "?", "{") and self.peek() != "":
            if not repeatable:
                anchor = self.p[start : self.i]
                raise _ReError(f"`{self.peek()}` cannot repeat the anchor `{anchor}`", self.i)
            if self.peek() == "{":
                self.interval()
            else:
                self.i += 1

    def interval(self) -> None:
        start = self.i
        close = self.p.find("}", start)
        if close == -1:
            raise _ReError("this `{` is never closed", start)
        body = self.p[start + 1 : close]
        low_text, comma, high_text = body.partition(",")
        if not all(part == "" or part.isdigit() for part in (low_text, high_text)) or (
            not comma and low_text == ""
        ):
            raise _ReError(
                f"`{{{body}}}` is not a repetition count (`{{n}}`, `{{n,}}` or `{{n,m}}`)", start
            )
        if not all(part.isascii() for part in (low_text, high_text)):
            raise _ReError(f"`{{{body}}}` is not a repetition count", start)
        low = int(low_text) if low_text else 0
        high = (int(high_text) if high_text else None) if comma else low
        if high is not None and high < low:
            raise _ReError(f"`{{{body}}}`: the maximum is smaller than the minimum", start)
        if max(low, high or 0) > RE_DUP_MAX:
            raise _ReError(f"`{{{body}}}`: a count above {RE_DUP_MAX}", start)
        self.i = close + 1

    def bracket(self) -> None:
        start = self.i
        p = self.p
        self.i += 1
        if self.peek() == "^":
            self.i += 1
        first = True
        previous: str | None = None  # the last single character, a possible range start
        while True:
            if self.i >= len(p):
                raise _ReError("this `[` is never closed", start)
            c = p[self.i]
            if c == "]" and not first:
                self.i += 1
                return
            at_start = first
            first = False
            if c == "[" and self.i + 1 < len(p) and p[self.i + 1] in ":.=":
                kind = p[self.i + 1]
                end = p.find(kind + "]", self.i + 2)
                if end == -1:
                    raise _ReError("this `[` is never closed", start)
                name = p[self.i + 2 : end]
                if kind == ":":
                    if name not in CHAR_CLASSES:
                        raise _ReError(f"`[:{name}:]` is not a character class", self.i)
                    previous = None
                elif len(name) != 1:
                    raise _ReError(f"`[{kind}{name}{kind}]` is not a single character", self.i)
                else:
                    previous = name if kind == "." else None
                self.i = end + 2
                continue
            if c == "-" and not at_start and self.i + 1 < len(p) and p[self.i + 1] != "]":
                if previous is None:
                    raise _ReError("`-` after a range or a class must be last or first", self.i)
                range_at = self.i
                self.i += 1
                end_char = p[self.i]
                if end_char == "[" and self.i + 1 < len(p) and p[self.i + 1] in ":=":
                    raise _ReError("a range cannot end with a character class", range_at)
                if end_char == "[" and self.i + 1 < len(p) and p[self.i + 1] == ".":
                    close = p.find(".]", self.i + 2)
                    if close == -1:
                        raise _ReError("this `[` is never closed", start)
                    end_char = p[self.i + 2 : close]
                    self.i = close + 2
                else:
                    self.i += 1
                # REG_ICASE: glibc folds both ends to upper case before comparing
                if len(end_char) == 1 and end_char.upper() < previous.upper():
                    raise _ReError(f"the range `{previous}-{end_char}` is backwards", range_at)
                previous = None
                continue
            previous = c
            self.i += 1


def posix_ere_error(pattern: str) -> RegexError | None:
    """Why ``pattern`` is not a valid POSIX extended regular expression for glibc, or
    None when ``regcomp(REG_EXTENDED|REG_ICASE|REG_NOSUB)`` accepts it."""
    try:
        _EreParser(pattern).parse()
    except _ReError as failure:
        return failure.error
    return None


def hostport_error(text: str) -> str | None:
    """Why ``text`` is not ``[proto:]host[:port]``, or None when it is."""
    rest = text
    proto, sep, after = rest.partition(":")
    if sep and proto.lower() in PROTOCOLS:
        rest = after
    if not rest:
        return "no host"
    port_text: str | None
    if rest.startswith("["):
        close = rest.find("]")
        if close == -1:
            return "`[` of an IPv6 address is never closed"
        address = rest[1:close]
        if not address or any(c not in "0123456789abcdefABCDEF:." for c in address):
            return f"`{address}` is not an IPv6 address"
        after = rest[close + 1 :]
        if after and not after.startswith(":"):
            return f"unexpected `{after}` after the address"
        port_text = after[1:] if after else None
    else:
        host, colon, port = rest.partition(":")
        if ":" in port:
            return "an IPv6 address must be written in brackets (`[::1]:5060`)"
        if not host:
            return "no host"
        bad = [c for c in host if not (c.isascii() and (c.isalnum() or c in "-._"))]
        if bad:
            return f"`{bad[0]}` cannot appear in a host name"
        if any(label == "" for label in host.split(".")[:-1]):
            return f"`{host}` has an empty label"
        port_text = port if colon else None
    if port_text is not None:
        if not port_text.isascii() or not port_text.isdigit():
            return f"`{port_text}` is not a port number"
        if not 1 <= int(port_text) <= 65535:
            return f"port {int(port_text)} is outside 1..65535"
    return None


def _constant_text(expr: ast.Expr) -> str | None:
    if isinstance(expr, ast.String) and all(isinstance(p, str) for p in expr.parts):
        return expr.value
    return None


def _check_reply_code(ctx: SemaContext, arg: ast.Expr) -> None:
    if isinstance(arg, ast.Number):
        code, shown = arg.value, arg.text
    else:
        text = _constant_text(arg)
        if text is None:
            return
        if not text.strip().isdigit() or not text.strip().isascii():
            ctx.sink.emit(
                Diagnostic.error(
                    "E0406",
                    f"reply code `{text}` is not a number",
                    arg.span,
                    "expected a number from 100 to 699",
                )
            )
            return
        code, shown = int(text.strip()), text
    if not 100 <= code <= 699:
        ctx.sink.emit(
            Diagnostic.error(
                "E0406",
                f"reply code `{shown}` is outside 100..699",
                arg.span,
                "not a SIP reply code",
                notes=["SIP reply codes have three digits, 1xx to 6xx (RFC 3261 section 7.2)"],
            )
        )


_PYTHON_ONLY = {
    "(?": "POSIX regular expressions have no `(?...)` groups: write `(...)`",
}


def _check_regex(ctx: SemaContext, arg: ast.Expr, where: str) -> None:
    text = _constant_text(arg)
    if text is None:
        return
    error = posix_ere_error(text)
    if error is None:
        return
    notes = [f"Kamailio compiles {where} as a POSIX extended regular expression"]
    help_ = next((h for marker, h in _PYTHON_ONLY.items() if marker in text), None)
    ctx.sink.emit(
        Diagnostic.error(
            "E0407",
            f"regular expression `{text}` does not compile",
            arg.span,
            error.message,
            notes=notes,
            help=help_,
        )
    )


def _check_hostport(ctx: SemaContext, arg: ast.Expr) -> None:
    text = _constant_text(arg)
    if text is None:
        return
    reason = hostport_error(text)
    if reason is None:
        return
    ctx.sink.emit(
        Diagnostic.error(
            "E0408",
            f"malformed next hop `{text}`",
            arg.span,
            reason,
            notes=["expected `[proto:]host[:port]`, an IPv6 address in brackets"],
        )
    )


#: the counters functions whose first argument names a declared counter
_COUNTER_FUNCTIONS = frozenset({"cnt_inc", "cnt_add", "cnt_reset"})


def _declared_counters(config: ast.Config) -> tuple[frozenset[str], str]:
    """The statistics the cfg's ``script_counter`` declarations create, and the
    group a name without one belongs to (``script_cnt_grp_name``)."""
    decls: list[str] = []
    group = DEFAULT_GROUP
    for item in config.items:
        if not isinstance(item, ast.ModParam) or item.module.value != "counters":
            continue
        if not isinstance(item.value, ast.String):
            continue
        if item.param.value == "script_counter":
            decls.append(item.value.value)
        elif item.param.value == "script_cnt_grp_name" and item.value.value:
            group = item.value.value
    return frozenset(declared_names(decls, group)), group


def _check_counter(ctx: SemaContext, arg: ast.Expr, declared: frozenset[str], group: str) -> None:
    text = _constant_text(arg)
    if text is None:
        return
    name = counter_name(text, group)
    if name in declared:
        return
    shown = name.replace(":", ".", 1)
    ctx.sink.emit(
        Diagnostic.error(
            "E0409",
            f"counter `{shown}` is not declared",
            arg.span,
            "no `script_counter` declares it",
            notes=[
                "Kamailio refuses to start: `counter "
                f"{shown} does not exist (forgot to define it?)`"
            ],
            help=f'declare it: `modparam("counters", "script_counter", "{text} description")`',
        )
    )


def check(ctx: SemaContext) -> None:
    declared: frozenset[str] | None = None
    group = DEFAULT_GROUP
    if "counters" in ctx.loaded:
        declared, group = _declared_counters(ctx.config)
    for route in ctx.route_blocks():
        for node in iter_nodes(route.body):
            if isinstance(node, ast.Call):
                info = ctx.resolved.get(id(node))
                if info is None:
                    continue
                if declared is not None and node.name in _COUNTER_FUNCTIONS and node.args:
                    _check_counter(ctx, node.args[0], declared, group)
                for arg, spec in zip(node.args, info.cmd.args, strict=False):
                    match spec.kind:
                        case ArgKind.REPLY_CODE:
                            _check_reply_code(ctx, arg)
                        case ArgKind.REGEX:
                            _check_regex(ctx, arg, f"this argument of `{node.name}`")
                        case ArgKind.HOSTPORT:
                            _check_hostport(ctx, arg)
                        case _:
                            pass
            elif isinstance(node, ast.BinOp) and node.op == "=~":
                _check_regex(ctx, node.right, "the right side of `=~`")
            elif isinstance(node, ast.CaseClause) and node.is_regex and node.value is not None:
                _check_regex(ctx, node.value, "a `case /` label")
