"""Message, branch and script flags (E0501, W0502-W0505) and the flag table.

A flag is a bit, 0..31, in one of three sets (:class:`FlagKind`): message flags
(``setflag``/``resetflag``/``isflagset``, kept in the transaction), branch flags
(kex ``setbflag``/``resetbflag``/``isbflagset``, one set per branch) and script flags
(kex ``setsflag``/...). Configs name them with ``#!define FLT_ACC 1`` (the define
disappears in preprocessing; kcc finds its name in the origin of the number) or with
``flags NAME:N`` declarations, and hand some to modules through parameters (acc
``log_flag``, usrloc ``nat_bflag``: :attr:`ModParam.flag`).

:func:`build_flag_table` collects every use: the arguments of ``ArgKind.FLAG``
parameters of resolved calls, ``flags`` declarations and flag parameters.
:func:`check` then reports

- E0501: a flag number outside 0..31, or a flag name that is neither declared nor
  defined (Kamailio: "bad flag value", "register flag failed", "flag not declared");
- W0502: a flag tested but never set (a parameter through which a module sets the
  flag itself counts as setting it: :data:`SETTING_PARAMS`);
- W0503: a flag set but never tested nor named by a module parameter;
- W0504: one number of one flag set under two names, both used as flags;
- W0505: one name used as flags of two kinds (a branch-flag define with ``setflag``).

W0502 and W0503 stay quiet for a flag set whose flags are also changed or read
through a value known only at run time (``setflag($var(f))``, ``$mf``, ``$bf`` ...).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from kcc_runtime.exports import ArgKind, FlagKind

from kcc import ast
from kcc.diagnostics import Diagnostic, Label
from kcc.sema.context import SemaContext, iter_nodes, module_name
from kcc.source import SourceFile, Span

__all__ = [
    "SETTING_PARAMS",
    "FlagEntry",
    "FlagOp",
    "FlagTable",
    "FlagUse",
    "build_flag_table",
    "check",
    "render_flag_table",
]

MAX_FLAG = 31

#: module parameters naming a flag that the module sets by itself: usrloc's
#: ``lookup()`` sets ``nat_bflag`` on the branches of contacts registered behind NAT
SETTING_PARAMS = frozenset({("usrloc", "nat_bflag")})

#: pseudo-variables holding a whole flag set; a write sets flags, a read tests them
FLAG_PVS: dict[str, FlagKind] = {
    "mf": FlagKind.MESSAGE,
    "mF": FlagKind.MESSAGE,
    "bf": FlagKind.BRANCH,
    "bF": FlagKind.BRANCH,
    "Bf": FlagKind.BRANCH,
    "sf": FlagKind.SCRIPT,
    "sF": FlagKind.SCRIPT,
    "Sf": FlagKind.SCRIPT,
}

_KIND_ORDER = {FlagKind.MESSAGE: 0, FlagKind.BRANCH: 1, FlagKind.SCRIPT: 2}


class FlagOp(enum.Enum):
    SET = "set"
    RESET = "reset"
    TEST = "test"
    #: named by a module parameter (acc ``log_flag``)
    PARAM = "param"
    #: declared with ``flags NAME:N``
    DECLARE = "declare"


@dataclass(frozen=True, slots=True)
class FlagUse:
    op: FlagOp
    kind: FlagKind
    number: int
    #: the define or declared name written, None for a plain number
    name: str | None
    #: where the flag is written (the argument, the declaration, the parameter value)
    span: Span
    #: ``setflag``, ``acc.log_flag``, ``flags``
    via: str


@dataclass
class FlagEntry:
    """One flag: a number in one flag set, and every place that uses it."""

    kind: FlagKind
    number: int
    uses: list[FlagUse] = field(default_factory=list)

    def of(self, op: FlagOp) -> list[FlagUse]:
        return [use for use in self.uses if use.op is op]

    @property
    def names(self) -> list[str]:
        """Names in first-use order."""
        seen: dict[str, None] = {}
        for use in self.uses:
            if use.name is not None:
                seen.setdefault(use.name)
        return list(seen)


@dataclass
class FlagTable:
    entries: dict[tuple[FlagKind, int], FlagEntry] = field(default_factory=dict)
    #: flag sets changed (SET) or read (TEST) with values known only at run time
    dynamic: set[tuple[FlagKind, FlagOp]] = field(default_factory=set)

    def add(self, use: FlagUse) -> None:
        key = (use.kind, use.number)
        entry = self.entries.get(key)
        if entry is None:
            entry = self.entries[key] = FlagEntry(use.kind, use.number)
        entry.uses.append(use)

    def sorted_entries(self) -> list[FlagEntry]:
        return [
            self.entries[k] for k in sorted(self.entries, key=lambda k: (_KIND_ORDER[k[0]], k[1]))
        ]


def _define_name(span: Span) -> str | None:
    """The define the user wrote where this text was expanded (the outermost one)."""
    name = None
    current: Span | None = span
    while current is not None and current.origin is not None and current.origin.kind == "define":
        name = current.origin.name
        current = current.origin.site
    return name


def _op_of(function: str) -> FlagOp:
    if "reset" in function:
        return FlagOp.RESET
    if function.startswith("is"):
        return FlagOp.TEST
    return FlagOp.SET


class _Builder:
    def __init__(self, ctx: SemaContext, report: bool) -> None:
        self.ctx = ctx
        self.report = report
        self.table = FlagTable()
        #: ``flags NAME:N`` declarations
        self.declared: dict[str, int] = {}

    def error(self, message: str, span: Span, label: str, help_: str | None = None) -> None:
        if self.report:
            self.ctx.sink.emit(Diagnostic.error("E0501", message, span, label, help=help_))

    def number(self, value: int, span: Span, kind: FlagKind, what: str) -> bool:
        if 0 <= value <= MAX_FLAG:
            return True
        name = _define_name(span)
        shown = f"`{name}` ({value})" if name else f"{value}"
        self.error(
            f"{kind.value} flag {shown} is outside 0..{MAX_FLAG}",
            span,
            f"{what} must be a number from 0 to {MAX_FLAG}",
            help_=f"Kamailio has {MAX_FLAG + 1} {kind.value} flags, numbered 0 to {MAX_FLAG}",
        )
        return False

    def declarations(self) -> None:
        for item in self.ctx.config.items:
            if not isinstance(item, ast.FlagsDecl):
                continue
            for flag in item.flags:
                bit = flag.bit
                if bit is None:
                    # Kamailio gives a flag declared without a number the lowest free one
                    taken = set(self.declared.values())
                    bit = next((n for n in range(MAX_FLAG + 1) if n not in taken), None)
                    if bit is None:
                        continue
                elif not self.number(bit, flag.span, FlagKind.MESSAGE, "a flag position"):
                    continue
                self.declared.setdefault(flag.name, bit)
                self.table.add(
                    FlagUse(FlagOp.DECLARE, FlagKind.MESSAGE, bit, flag.name, flag.span, "flags")
                )

    def params(self) -> None:
        registry = self.ctx.registry
        for item in self.ctx.config.items:
            if not isinstance(item, ast.ModParam):
                continue
            value = item.value
            if not isinstance(value, ast.Number):
                continue
            for module in item.module.value.split("|"):
                spec = registry.param(module_name(module.strip()), item.param.value)
                if spec is None or spec.flag is None:
                    continue
                via = f"{module.strip()}.{item.param.value}"
                if self.number(value.value, value.span, spec.flag, f"`{via}`"):
                    name = _define_name(value.span)
                    self.table.add(
                        FlagUse(FlagOp.PARAM, spec.flag, value.value, name, value.span, via)
                    )

    def argument(self, call: ast.Call, arg: ast.Expr, kind: FlagKind) -> None:
        op = _op_of(call.name)
        value: int | None = None
        name: str | None = None
        match arg:
            case ast.Number():
                value, name = arg.value, _define_name(arg.span)
            case ast.UnaryOp(op="-", operand=ast.Number() as operand):
                value, name = -operand.value, _define_name(operand.span)
            case ast.String(value=text) if all(isinstance(p, str) for p in arg.parts):
                stripped = text.strip()
                if stripped.lstrip("-").isdigit() and stripped.isascii():
                    value, name = int(stripped), _define_name(arg.span)
                else:
                    self.error(
                        f"`{text}` is not a flag number",
                        arg.span,
                        f"expected a number from 0 to {MAX_FLAG}",
                    )
                    return
            case ast.Name(name=word):
                if word not in self.declared:
                    self.error(
                        f"flag `{word}` is not declared",
                        arg.span,
                        "no `flags` declaration or `#!define` gives this name a number",
                        help_=f"declare it: `#!define {word} N` or `flags {word}:N;`",
                    )
                    return
                value, name = self.declared[word], word
            case _:
                # a pseudo-variable or an expression: the flag is known only per message
                self.table.dynamic.add((kind, FlagOp.TEST if op is FlagOp.TEST else FlagOp.SET))
                return
        if self.number(value, arg.span, kind, f"the flag of `{call.name}`"):
            self.table.add(FlagUse(op, kind, value, name, arg.span, call.name))

    def calls(self) -> None:
        targets: set[int] = set()
        for route in self.ctx.route_blocks():
            for node in iter_nodes(route.body):
                if isinstance(node, ast.Call):
                    info = self.ctx.resolved.get(id(node))
                    if info is None:
                        continue
                    for arg, spec in zip(node.args, info.cmd.args, strict=False):
                        if spec.kind is ArgKind.FLAG and spec.flag is not None:
                            self.argument(node, arg, spec.flag)
                elif isinstance(node, ast.AssignStmt | ast.AssignExpr):
                    targets.add(id(node.target))
                    kind = FLAG_PVS.get(node.target.name)
                    if kind is not None:
                        self.table.dynamic.add((kind, FlagOp.SET))
                elif (
                    isinstance(node, ast.PVar) and node.name in FLAG_PVS and id(node) not in targets
                ):
                    self.table.dynamic.add((FLAG_PVS[node.name], FlagOp.TEST))


def build_flag_table(ctx: SemaContext, *, report: bool = False) -> FlagTable:
    """Every flag use of the config (run after the ``calls`` pass). With ``report``,
    E0501 goes to the sink for numbers and names that are wrong; such uses are left
    out of the table either way."""
    builder = _Builder(ctx, report)
    builder.declarations()
    builder.params()
    builder.calls()
    return builder.table


def _shown(entry: FlagEntry) -> str:
    names = entry.names
    if names:
        return f"`{names[0]}` ({entry.number})"
    return f"{entry.number}"


_SET_WORDS = r"set[bs]?flag|modparam\s*\([^)]*"
_TEST_WORDS = r"is[bs]?flagset|modparam\s*\([^)]*"


class _Elsewhere:
    """Uses of a flag name in the text the preprocessor left out.

    The stock config sets ``FLT_NATS`` only under ``#!ifdef WITH_NAT`` and tests it
    outside: without ``WITH_NAT`` the test is dead, by design. A flag set (or tested)
    in text that ``#!ifdef`` removed, or in a comment, is taken as set (or tested)
    there, so W0502 and W0503 speak only of flags no variant of the config completes.
    """

    def __init__(self, ctx: SemaContext, table: FlagTable) -> None:
        #: where the config's own uses are: those are not "elsewhere"
        self.seen = {
            (id(use.span.use_site().file), use.span.use_site().start)
            for entry in table.entries.values()
            for use in entry.uses
        }
        files: dict[int, SourceFile] = {}
        for item in ctx.config.items:
            site = item.span.use_site()
            files.setdefault(id(site.file), site.file)
        self.files = list(files.values())

    def found(self, name: str | None, words: str) -> bool:
        if name is None:
            return False
        pattern = re.compile(rf"\b(?:{words})\s*[(,]\s*{re.escape(name)}\b")
        for file in self.files:
            for m in pattern.finditer(file.text):
                at = m.end() - len(name)
                if (id(file), at) not in self.seen:
                    return True
        return False


def _check_entry(
    ctx: SemaContext, table: FlagTable, entry: FlagEntry, elsewhere: _Elsewhere
) -> None:
    kind = entry.kind
    sets, tests, params = entry.of(FlagOp.SET), entry.of(FlagOp.TEST), entry.of(FlagOp.PARAM)
    set_by_module = [p for p in params if tuple(p.via.split(".", 1)) in SETTING_PARAMS]
    names = entry.names
    if (
        tests
        and not sets
        and not set_by_module
        and (kind, FlagOp.SET) not in table.dynamic
        and not any(elsewhere.found(n, _SET_WORDS) for n in names)
    ):
        ctx.sink.emit(
            Diagnostic.warning(
                "W0502",
                f"{kind.value} flag {_shown(entry)} is tested but never set",
                tests[0].span,
                "this test is always false",
                notes=[f"no `{_setter(kind)}` and no module parameter sets this flag"],
            )
        )
    if (
        sets
        and not tests
        and not params
        and (kind, FlagOp.TEST) not in table.dynamic
        and not any(elsewhere.found(n, _TEST_WORDS) for n in names)
    ):
        ctx.sink.emit(
            Diagnostic.warning(
                "W0503",
                f"{kind.value} flag {_shown(entry)} is set but never tested",
                sets[0].span,
                "set here",
                notes=["no test reads this flag and no module parameter names it"],
                help=f"test it with `{_tester(kind)}`, hand it to a module, or remove the set",
            )
        )
    first_by_name: dict[str, FlagUse] = {}
    for use in entry.uses:
        if use.name is not None:
            first_by_name.setdefault(use.name, use)
    if len(first_by_name) > 1:
        (first_name, first), *others = first_by_name.items()
        for other_name, other in others:
            ctx.sink.emit(
                Diagnostic.warning(
                    "W0504",
                    f"{kind.value} flag {entry.number} has two names, "
                    f"`{first_name}` and `{other_name}`",
                    other.span,
                    f"`{other_name}` is flag {entry.number}",
                    labels=[Label(first.span, f"`{first_name}` is flag {entry.number} too")],
                    notes=["setting one of them sets the other"],
                    help=f"give `{other_name}` a number no other flag uses",
                )
            )


def _setter(kind: FlagKind) -> str:
    return {FlagKind.MESSAGE: "setflag", FlagKind.BRANCH: "setbflag", FlagKind.SCRIPT: "setsflag"}[
        kind
    ]


def _tester(kind: FlagKind) -> str:
    return {
        FlagKind.MESSAGE: "isflagset",
        FlagKind.BRANCH: "isbflagset",
        FlagKind.SCRIPT: "issflagset",
    }[kind]


def _check_kinds(ctx: SemaContext, table: FlagTable) -> set[str]:
    """W0505: one name used as flags of two kinds; returns those names (W0502 and
    W0503 say nothing more about their flags: one cause, one warning)."""
    by_name: dict[str, dict[FlagKind, FlagUse]] = {}
    for entry in table.entries.values():
        for use in entry.uses:
            if use.name is not None:
                kinds = by_name.setdefault(use.name, {})
                previous = kinds.get(use.kind)
                if previous is None or use.span.use_site().start < previous.span.use_site().start:
                    kinds[use.kind] = use
    mixed: set[str] = set()
    for name, kinds in sorted(by_name.items()):
        if len(kinds) < 2:
            continue
        mixed.add(name)
        ordered = sorted(
            kinds.values(), key=lambda u: (u.span.use_site().file.path, u.span.use_site().start)
        )
        first = ordered[0]
        for use in ordered[1:]:
            ctx.sink.emit(
                Diagnostic.warning(
                    "W0505",
                    f"`{name}` is used as a {first.kind.value} flag and as a {use.kind.value} flag",
                    use.span,
                    f"`{use.via}` takes a {use.kind.value} flag",
                    labels=[Label(first.span, f"used as a {first.kind.value} flag here")],
                    notes=[
                        "message, branch and script flags are separate sets: flag "
                        f"{use.number} of one is not flag {use.number} of another"
                    ],
                    help=f"use a {use.kind.value}-flag name here, "
                    f"or the function for {first.kind.value} flags",
                )
            )
    return mixed


def check(ctx: SemaContext) -> None:
    """Build the flag table and report on it (``kcc check --flags`` prints the table of
    :func:`build_flag_table`)."""
    table = ctx.flag_table = build_flag_table(ctx, report=True)
    elsewhere = _Elsewhere(ctx, table)
    mixed = _check_kinds(ctx, table)
    for entry in table.sorted_entries():
        if not mixed.intersection(entry.names):
            _check_entry(ctx, table, entry, elsewhere)


def _where(uses: list[FlagUse], main: str | None) -> str:
    if not uses:
        return "-"
    shown: list[str] = []
    for use in uses:
        site = use.span.use_site()
        text = str(site.line) if site.file.path == main else f"{site.file.display}:{site.line}"
        if use.op is FlagOp.PARAM:
            text = f"{use.via}@{text}"
        if text not in shown:
            shown.append(text)
    return ",".join(shown)


def render_flag_table(table: FlagTable, main_file: str | None = None) -> str:
    """A plain-text table of every flag: kind, number, names, and the lines where it is
    set, reset, tested, and named by module parameters (``module.param@line``).

    Lines in ``main_file`` are shown as numbers, others as ``file:line``. Rows are
    ordered by kind (message, branch, script), then number.
    """
    header = ("kind", "flag", "names", "set", "reset", "tested", "parameters")
    rows = [header]
    for entry in table.sorted_entries():
        rows.append(
            (
                entry.kind.value,
                str(entry.number),
                ",".join(entry.names) or "-",
                _where(entry.of(FlagOp.SET), main_file),
                _where(entry.of(FlagOp.RESET), main_file),
                _where(entry.of(FlagOp.TEST), main_file),
                _where(entry.of(FlagOp.PARAM), main_file),
            )
        )
    if len(rows) == 1:
        return "no flags\n"
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return "\n".join(lines) + "\n"
