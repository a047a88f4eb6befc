"""Kamailio's script values and operators, exactly as Kamailio 5.6 evaluates them.

The config language has three kinds of value: a 32-bit signed ``int``, a ``str`` and
"undefined" (an unset AVP, ``$null``), which is ``None`` here. Generated proxies
evaluate every expression with the functions of this module; each one returns a
Kamailio value (comparisons and logical operators return the int 0 or 1).

Every rule below was measured on Kamailio 5.6.3 (``kamailio -DD -E`` on loopback, one
OPTIONS request, results logged with ``xlog``); the snippet after each rule is the
config that shows it, with the logged value. Operands come from ``$var`` because
Kamailio type-checks and folds constant expressions at start-up (``1/0`` or
``"a" < 1`` written with literals is a config error, not a runtime value).
``tests/runtime/test_kamailio_values.py`` re-runs such a table against the installed
Kamailio and compares every result with this module.

Integers (``rvalue.c`` computes in C ``int``):

- arithmetic wraps at 32 bits: ``$var(a)=2147483647; $var(a)+1`` -> ``-2147483648``;
  ``65536*65536`` -> ``0``; ``-(-2147483648)`` -> ``-2147483648``; an integer literal
  wraps too: ``$var(a)=4294967297`` -> ``1``;
- ``/`` truncates toward zero and ``mod`` takes the dividend's sign (C):
  ``-7 / 2`` -> ``-3``, ``-7 mod 3`` -> ``-1``, ``7 mod -3`` -> ``1``;
- ``/`` or ``mod`` by zero is an evaluation error (:class:`EvalError`, "rv div by 0"):
  the whole expression has no value. An assignment is skipped (``$var(x)=5;
  $var(x)=$var(a)/$var(b);`` with b=0 leaves ``5``), an ``if``/``while`` condition is
  false (``if (!($var(a)/$var(b)))`` takes the else branch), and the script goes on;
- ``-2147483648 / -1`` kills the Kamailio worker with SIGFPE (x86 ``idiv``); kcc
  reports it as an :class:`EvalError` instead;
- shift counts are taken modulo 32 (x86 ``sal``/``sar``): ``1 << 32`` -> ``1``,
  ``1 << -1`` -> ``-2147483648``, ``1 >> -1`` -> ``0``; ``>>`` is arithmetic:
  ``-8 >> 1`` -> ``-4``, ``-1 >> 32`` -> ``-1``.

Conversions:

- string -> int (:func:`str_to_int`, Kamailio's ``str2sint`` with its hex form):
  ``[+-]?[0-9]+`` in ``-2147483648..2147483647`` (``"+12"`` -> 12, ``"010"`` -> 10,
  ``"2147483648"`` -> 0), or ``0x``/``0X`` and hex digits, no sign, taken modulo 2**32
  (``"0xFFFFFFFF"`` -> -1, ``"0x100000000"`` -> 0). Anything else is 0 with a warning:
  ``" 12"``, ``"12 "``, ``"12abc"``, ``"-0x10"``, ``"1e3"``, ``""``;
- int -> string is the decimal form; undefined is 0 as an int and ``""`` as a string.

Operators:

- ``+`` follows the left operand's runtime type: int left -> integer addition with the
  right converted (``1 + "2"`` -> 3, ``1 + "x"`` -> 1); string left -> concatenation
  (``"a" + -5`` -> ``"a-5"``); **undefined left -> string**: ``$null + 1`` -> ``"1"``,
  ``$null + $null`` -> ``""``;
- ``== !=`` compare as strings when the left value is a string, as ints when it is an
  int, and by the right value's type when the left is undefined (``$null == 0`` -> 1,
  ``$null == ""`` -> 1, two undefined values are equal). ``"10" == 10`` -> 1,
  ``10 == "abc"`` -> 0, ``0 == "abc"`` -> 1, ``"010" == 10`` -> 0, ``10 == "010"`` -> 1.
  Written with the literal ``$null`` on the right, ``x == $null`` is ``!defined x``
  (``$var(a)=0; $var(a) == $null`` -> 0, ``"" == $null`` -> 0) while an undefined
  variable on the right is just a value (``$var(a)=0; $var(a) == $avp(nope)`` -> 1):
  the generated code emits :func:`defined` for the literal form;
- ``eq ne`` always compare strings (case-sensitive), ``ieq ine`` always ints;
- ``< > <= >=`` are integer-only: ``"abc" < 1`` -> 1, ``"10" < "9"`` -> 0;
- ``=~`` is a POSIX extended regular expression, case-insensitive, unanchored, on the
  left value as a string (``12 =~ "1"`` -> 1, ``$null =~ "^$"`` -> 1); a pattern that
  does not compile is an evaluation error ("Bad regular expression");
- ``! && ||`` use int truthiness (non-zero): ``!(-1)`` -> 0, ``!"abc"`` -> 1,
  ``!"5"`` -> 0; ``&&``/``||`` return 0 or 1;
- ``- ~`` (unary) and ``(int)`` convert to int; ``(str)`` to string;
- ``strlen`` counts bytes of the string form (``strlen(-12)`` -> 3, undefined -> 0);
  ``strempty`` is 1 for ``""`` and undefined, 0 otherwise (``strempty(0)`` -> 0);
- ``selval(c, a, b)`` is ``a`` when ``c`` is **> 0** (like ``if``): ``selval(-1, ...)``
  and ``selval("x", ...)`` give ``b``; only the chosen branch is evaluated.

Conditions: ``if``/``while`` take the branch when the value converted to int is > 0
(:func:`cond`): ``if (-1)``, ``if ("abc")`` and ``if ($null)`` are false, ``if ("5")``
true. A function call or ``route()`` used as a value is 1 when its return code is > 0
and 0 otherwise (:func:`rc_value`); a return code of 0 ends the script
(:func:`rc_ends_script`), which the generated code turns into ``ScriptExit``.

Kamailio's start-up optimizer (``rve_opt_01`` in ``rvalue.c``) rewrites an ``&&``/
``||`` with a constant int operand, after folding constant sub-expressions, and this
changes values: ``x && 1``, ``1 && x``, ``x || 0`` and ``0 || x`` become ``(int)x``
(``$var(a)=-2; $var(a) && 1`` -> -2, so ``if ($var(a) && 1)`` is false while
``if ($var(a) && 3)`` is true), and ``x && 0``, ``0 && x``, ``x || 1``, ``1 || x``
become the constant without evaluating ``x`` (``($var(a)/$var(b)) || 1`` -> 1 with
b=0). Any other constant (``x && 3``, ``5 || x``) leaves the operator alone. This is a
compile-time rule: the code generator applies it with :data:`LOGICAL_IDENTITY` and
:data:`LOGICAL_ABSORBING`; the functions here are the operators themselves.

Regular expressions: Kamailio uses glibc ``regcomp(REG_EXTENDED|REG_ICASE)``, whose
syntax is not Python's (``\\d`` is a literal ``d``, ``]`` first in a bracket is a
member, a backslash inside a bracket is literal, ``{,n}`` is ``{0,n}``, ``a**`` is
legal, ``$`` matches only at the very end, ``.`` matches a newline).
:func:`compile_posix_ere` translates a POSIX ERE into an equivalent Python pattern.
Leftmost-longest (POSIX) and leftmost-first (Python) differ only in what a group
captures, never in whether ``=~`` matches. Kamailio matches bytes in the C locale;
these patterns are ASCII-only (``re.ASCII``: only ASCII letters fold case, ``\\w`` is
ASCII), and ``.`` matches one code point where glibc matches one byte, the only
difference, and only for non-ASCII text.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final, TypeAlias

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "LOGICAL_ABSORBING",
    "LOGICAL_IDENTITY",
    "EvalError",
    "Value",
    "add",
    "bit_and",
    "bit_not",
    "bit_or",
    "bit_xor",
    "cast_int",
    "cast_str",
    "compile_posix_ere",
    "cond",
    "defined",
    "div",
    "eq",
    "ge",
    "gt",
    "int_eq",
    "int_ne",
    "le",
    "log_and",
    "log_not",
    "log_or",
    "lt",
    "match",
    "match_compiled",
    "mod",
    "mul",
    "ne",
    "neg",
    "rc_ends_script",
    "rc_value",
    "selval_cond",
    "shl",
    "shr",
    "str_eq",
    "str_ne",
    "str_to_int",
    "strempty",
    "strlen",
    "sub",
    "to_int",
    "to_str",
    "truth",
    "wrap32",
]

#: a Kamailio script value: int, str, or None for undefined (``$null``, an unset AVP)
Value: TypeAlias = int | str | None

INT_MIN: Final = -(2**31)
INT_MAX: Final = 2**31 - 1
_MASK32: Final = 0xFFFFFFFF

#: ``x && 1 -> (int)x``, ``x || 0 -> (int)x`` (Kamailio's ``rve_opt_01``)
LOGICAL_IDENTITY: Final[dict[str, int]] = {"&&": 1, "||": 0}
#: ``x && 0 -> 0``, ``x || 1 -> 1`` without evaluating ``x``
LOGICAL_ABSORBING: Final[dict[str, int]] = {"&&": 0, "||": 1}

_DECIMAL: Final = re.compile(r"[+-]?[0-9]+", re.ASCII)
_HEX: Final = re.compile(r"0[xX]([0-9a-fA-F]+)", re.ASCII)


class EvalError(Exception):
    """An expression that has no value in Kamailio: division or ``mod`` by zero, a
    regular expression that does not compile. The enclosing assignment is skipped,
    an ``if``/``while`` condition is false, and the script goes on."""


def wrap32(value: int) -> int:
    """``value`` as a C ``int`` (two's complement, 32 bits)."""
    if INT_MIN <= value <= INT_MAX:
        return value
    return ((value - INT_MIN) & _MASK32) + INT_MIN


def str_to_int(text: str) -> int:
    """Kamailio's automatic string to int conversion; 0 when the text is not a number.

    Decimal with an optional sign and no surrounding space, in the int range
    (``"-2147483648"`` -> INT_MIN, ``"2147483648"`` -> 0), or unsigned ``0x`` hex
    taken modulo 2**32 (``"0xFFFFFFFF"`` -> -1). ``"12abc"``, ``" 12"``, ``"1e3"`` -> 0.
    """
    if _DECIMAL.fullmatch(text) is not None:
        value = int(text)
        return value if INT_MIN <= value <= INT_MAX else 0
    hex_digits = _HEX.fullmatch(text)
    if hex_digits is not None:
        return wrap32(int(hex_digits.group(1), 16) & _MASK32)
    return 0


def to_int(value: Value) -> int:
    """A value as an int: ints as they are, strings by :func:`str_to_int`, undefined 0."""
    if type(value) is int:
        return value
    if value is None:
        return 0
    return str_to_int(value)  # type: ignore[arg-type]


def to_str(value: Value) -> str:
    """A value as a string: ints in decimal, undefined as ``""``."""
    if type(value) is str:
        return value
    if value is None:
        return ""
    return str(value)


def cast_int(value: Value) -> int:
    """``(int)x``."""
    return to_int(value)


def cast_str(value: Value) -> str:
    """``(str)x``."""
    return to_str(value)


def cond(value: Value) -> bool:
    """Whether ``if``/``while`` take the branch: the value as an int is > 0."""
    return to_int(value) > 0


def truth(value: Value) -> bool:
    """The operand truth of ``!``, ``&&`` and ``||``: the value as an int is not 0
    (``!(-1)`` is 0, so -1 is true here although ``if (-1)`` is false)."""
    return to_int(value) != 0


def selval_cond(value: Value) -> bool:
    """Whether ``selval(c, a, b)`` picks ``a``: like ``if``, ``c`` as an int is > 0."""
    return to_int(value) > 0


def rc_value(rc: int) -> int:
    """A function's or ``route()``'s return code used as a value: 1 if > 0, else 0."""
    return 1 if rc > 0 else 0


def rc_ends_script(rc: int) -> bool:
    """A return code of 0 ends the script (an implicit ``exit``)."""
    return rc == 0


# -- arithmetic ---------------------------------------------------------------------


def add(left: Value, right: Value) -> int | str:
    """``+``: integer addition when the left value is an int, else concatenation
    (an undefined left value counts as ``""``)."""
    if type(left) is int:
        total = left + to_int(right)
        return total if INT_MIN <= total <= INT_MAX else wrap32(total)
    if left is None:
        return to_str(right)
    return left + to_str(right)  # type: ignore[operator]


def sub(left: Value, right: Value) -> int:
    """``-`` (binary), wrapping at 32 bits."""
    return wrap32(to_int(left) - to_int(right))


def mul(left: Value, right: Value) -> int:
    """``*``, wrapping at 32 bits."""
    return wrap32(to_int(left) * to_int(right))


def _check_divisor(dividend: int, divisor: int, what: str) -> None:
    if divisor == 0:
        raise EvalError(f"rv {what} by 0")
    if dividend == INT_MIN and divisor == -1:
        raise EvalError(f"rv {what} overflow: {INT_MIN} {what} -1")


def div(left: Value, right: Value) -> int:
    """``/``: C division, truncating toward zero; by zero is an :class:`EvalError`."""
    dividend = to_int(left)
    divisor = to_int(right)
    _check_divisor(dividend, divisor, "div")
    quotient = abs(dividend) // abs(divisor)
    return quotient if (dividend < 0) == (divisor < 0) else -quotient


def mod(left: Value, right: Value) -> int:
    """``mod``: C remainder, with the dividend's sign; by zero is an :class:`EvalError`."""
    dividend = to_int(left)
    divisor = to_int(right)
    _check_divisor(dividend, divisor, "mod")
    remainder = abs(dividend) % abs(divisor)
    return remainder if dividend >= 0 else -remainder


def neg(value: Value) -> int:
    """Unary ``-``, wrapping (``-INT_MIN`` is INT_MIN)."""
    return wrap32(-to_int(value))


def bit_and(left: Value, right: Value) -> int:
    """``&``."""
    return to_int(left) & to_int(right)


def bit_or(left: Value, right: Value) -> int:
    """``|``."""
    return to_int(left) | to_int(right)


def bit_xor(left: Value, right: Value) -> int:
    """``^``."""
    return to_int(left) ^ to_int(right)


def bit_not(value: Value) -> int:
    """``~``."""
    return ~to_int(value)


def shl(left: Value, right: Value) -> int:
    """``<<``: the count is taken modulo 32, the result wraps at 32 bits."""
    return wrap32(to_int(left) << (to_int(right) & 31))


def shr(left: Value, right: Value) -> int:
    """``>>``: arithmetic shift, the count taken modulo 32."""
    return to_int(left) >> (to_int(right) & 31)


# -- logic ----------------------------------------------------------------------------


def log_not(value: Value) -> int:
    """``!``: 1 when the value as an int is 0."""
    return 0 if to_int(value) else 1


def log_and(left: Value, right: Value) -> int:
    """``&&`` on two evaluated operands (the generated code short-circuits)."""
    return 1 if to_int(left) and to_int(right) else 0


def log_or(left: Value, right: Value) -> int:
    """``||`` on two evaluated operands (the generated code short-circuits)."""
    return 1 if to_int(left) or to_int(right) else 0


def defined(value: Value) -> int:
    """``defined x``, and ``x != $null`` written with the literal ``$null``."""
    return 0 if value is None else 1


# -- comparisons ----------------------------------------------------------------------


def eq(left: Value, right: Value) -> int:
    """``==``: by the left value's type, by the right's when the left is undefined."""
    kind = left if left is not None else right
    if type(kind) is int:
        return 1 if to_int(left) == to_int(right) else 0
    if kind is None:
        return 1
    return 1 if to_str(left) == to_str(right) else 0


def ne(left: Value, right: Value) -> int:
    """``!=``: the negation of :func:`eq`."""
    return 1 - eq(left, right)


def str_eq(left: Value, right: Value) -> int:
    """``eq``: string comparison, case-sensitive."""
    return 1 if to_str(left) == to_str(right) else 0


def str_ne(left: Value, right: Value) -> int:
    """``ne``."""
    return 0 if to_str(left) == to_str(right) else 1


def int_eq(left: Value, right: Value) -> int:
    """``ieq``: integer comparison."""
    return 1 if to_int(left) == to_int(right) else 0


def int_ne(left: Value, right: Value) -> int:
    """``ine``."""
    return 0 if to_int(left) == to_int(right) else 1


def lt(left: Value, right: Value) -> int:
    """``<`` (integers only)."""
    return 1 if to_int(left) < to_int(right) else 0


def gt(left: Value, right: Value) -> int:
    """``>`` (integers only)."""
    return 1 if to_int(left) > to_int(right) else 0


def le(left: Value, right: Value) -> int:
    """``<=`` (integers only)."""
    return 1 if to_int(left) <= to_int(right) else 0


def ge(left: Value, right: Value) -> int:
    """``>=`` (integers only)."""
    return 1 if to_int(left) >= to_int(right) else 0


# -- strings --------------------------------------------------------------------------


def strlen(value: Value) -> int:
    """``strlen(x)``: the length in bytes (UTF-8) of the string form."""
    text = to_str(value)
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogateescape"))


def strempty(value: Value) -> int:
    """``strempty(x)``: 1 for ``""`` and undefined."""
    return 0 if to_str(value) else 1


# -- regular expressions --------------------------------------------------------------

_CLASSES: Final[dict[str, str]] = {
    "alpha": "a-zA-Z",
    "upper": "A-Z",
    "lower": "a-z",
    "digit": "0-9",
    "xdigit": "0-9A-Fa-f",
    "alnum": "0-9A-Za-z",
    "space": r" \t\n\r\f\v",
    "blank": r" \t",
    "punct": re.escape("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
    "print": r" -~",
    "graph": r"!-~",
    "cntrl": r"\x00-\x1f\x7f",
}

#: glibc's backslash extensions outside brackets (everything else is the literal char)
_ESCAPES: Final[dict[str, str]] = {
    "w": r"\w",
    "W": r"\W",
    "s": r"\s",
    "S": r"\S",
    "b": r"\b",
    "B": r"\B",
    "<": r"\b(?=\w)",
    ">": r"\b(?<=\w)",
    "`": r"\A",
    "'": r"\Z",
}
_ANCHOR_ESCAPES: Final = frozenset("bB<>`'")
_RE_DUP_MAX: Final = 0x7FFF
_INTERVAL: Final = re.compile(r"\{([0-9]*)(,?)([0-9]*)\}", re.ASCII)


def _bracket_char(char: str) -> str:
    """One literal character inside a Python character set."""
    return "\\" + char if char in "\\]^-[&~|" else char


class _EreTranslator:
    """Reads a POSIX ERE (glibc's dialect) and writes the equivalent Python pattern.

    Each atom is translated on its own, and every repetition operator wraps what it
    repeats in ``(?:...)``, so POSIX's stacked operators (``a**``, ``a+?``: the
    repetition of a repetition) never become Python's lazy or possessive forms.
    """

    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0
        self.groups = 0
        self.closed: set[int] = set()

    def fail(self, message: str) -> EvalError:
        return EvalError(f"bad regular expression {self.p!r}: {message} at {self.i}")

    def translate(self) -> str:
        out = self.alternation(depth=0)
        if self.i != len(self.p):  # pragma: no cover - alternation stops only at the end
            raise self.fail("unexpected character")
        return out

    def alternation(self, depth: int) -> str:
        branches = [self.branch(depth)]
        while self.i < len(self.p) and self.p[self.i] == "|":
            self.i += 1
            branches.append(self.branch(depth))
        return "|".join(branches)

    def branch(self, depth: int) -> str:
        parts: list[str] = []
        while self.i < len(self.p):
            char = self.p[self.i]
            if char == "|" or (char == ")" and depth > 0):
                break
            parts.append(self.piece(depth))
        return "".join(parts)

    def piece(self, depth: int) -> str:
        p = self.p
        char = p[self.i]
        repeatable = True
        if char in "*+?{":
            raise self.fail(f"`{char}` has nothing to repeat")
        if char == "(":
            self.i += 1
            if self.i < len(p) and p[self.i] in "*+?{":
                raise self.fail(f"`{p[self.i]}` has nothing to repeat")
            self.groups += 1
            number = self.groups
            inner = self.alternation(depth + 1)
            if self.i >= len(p) or p[self.i] != ")":
                raise self.fail("`(` is never closed")
            self.i += 1
            self.closed.add(number)
            atom = f"({inner})"
        elif char == "[":
            atom = self.bracket()
        elif char == "\\":
            if self.i + 1 >= len(p):
                raise self.fail("trailing backslash")
            nxt = p[self.i + 1]
            self.i += 2
            if nxt in "123456789":
                if int(nxt) not in self.closed:
                    raise self.fail(f"back-reference `\\{nxt}` to no closed group")
                atom = f"(?:\\{nxt})"
            elif nxt in _ESCAPES:
                atom = _ESCAPES[nxt]
                repeatable = nxt not in _ANCHOR_ESCAPES
            else:
                atom = re.escape(nxt)
        elif char == "^":
            self.i += 1
            atom = r"\A"
            repeatable = False
        elif char == "$":
            self.i += 1
            atom = r"\Z"
            repeatable = False
        elif char == ".":
            self.i += 1
            atom = "."
        else:
            self.i += 1
            atom = re.escape(char)
        while self.i < len(p) and p[self.i] in "*+?{":
            if not repeatable:
                raise self.fail("an anchor cannot be repeated")
            if p[self.i] == "{":
                atom = f"(?:{atom}){self.interval()}"
            else:
                atom = f"(?:{atom}){p[self.i]}"
                self.i += 1
        return atom

    def interval(self) -> str:
        found = _INTERVAL.match(self.p, self.i)
        if found is None:
            raise self.fail("`{` is not a repetition count")
        low_text, comma, high_text = found.groups()
        if not comma and not low_text:
            raise self.fail("`{}` is not a repetition count")
        low = int(low_text) if low_text else 0
        high = (int(high_text) if high_text else None) if comma else low
        if (high is not None and high < low) or max(low, high or 0) > _RE_DUP_MAX:
            raise self.fail("bad repetition count")
        self.i = found.end()
        return f"{{{low},{'' if high is None else high}}}"

    def bracket(self) -> str:
        p = self.p
        start = self.i
        self.i += 1
        negate = self.i < len(p) and p[self.i] == "^"
        if negate:
            self.i += 1
        items: list[str] = []
        first = True
        previous: str | None = None  # the last single character: a range may start there
        while True:
            if self.i >= len(p):
                self.i = start
                raise self.fail("`[` is never closed")
            char = p[self.i]
            if char == "]" and not first:
                self.i += 1
                break
            at_start = first
            first = False
            if char == "[" and self.i + 1 < len(p) and p[self.i + 1] in ":.=":
                kind = p[self.i + 1]
                end = p.find(kind + "]", self.i + 2)
                if end == -1:
                    raise self.fail("`[` is never closed")
                name = p[self.i + 2 : end]
                self.i = end + 2
                if kind == ":":
                    if name not in _CLASSES:
                        raise self.fail(f"`[:{name}:]` is not a character class")
                    items.append(_CLASSES[name])
                    previous = None
                elif len(name) != 1:
                    raise self.fail("a collating element is one character")
                else:
                    items.append(_bracket_char(name))
                    previous = name
                continue
            if char == "-" and not at_start and self.i + 1 < len(p) and p[self.i + 1] != "]":
                if previous is None:
                    raise self.fail("`-` after a range or a class")
                self.i += 1
                end_char = p[self.i]
                if end_char == "[" and self.i + 1 < len(p) and p[self.i + 1] == ".":
                    close = p.find(".]", self.i + 2)
                    if close == -1 or close != self.i + 3:
                        raise self.fail("bad range end")
                    end_char = p[self.i + 2]
                    self.i = close + 2
                elif end_char == "[" and self.i + 1 < len(p) and p[self.i + 1] in ":=":
                    raise self.fail("a range cannot end with a class")
                else:
                    self.i += 1
                # REG_ICASE: glibc compares the ends folded to upper case
                if end_char.upper() < previous.upper():
                    raise self.fail(f"the range `{previous}-{end_char}` is backwards")
                items.pop()
                items.append(f"{_bracket_char(previous)}-{_bracket_char(end_char)}")
                previous = None
                continue
            items.append(_bracket_char(char))
            previous = char
            self.i += 1
        return "[" + ("^" if negate else "") + "".join(items) + "]"


def compile_posix_ere(pattern: str) -> re.Pattern[str]:
    """Compile a POSIX extended regular expression (glibc's ``regcomp`` with
    ``REG_EXTENDED|REG_ICASE``, as Kamailio's ``=~``) into a Python pattern for
    ``search``; raises :class:`EvalError` when glibc would not compile it."""
    try:
        translated = _EreTranslator(pattern).translate()
    except RecursionError:
        raise EvalError(f"bad regular expression {pattern!r}: nested too deeply") from None
    try:
        return re.compile(translated, re.IGNORECASE | re.DOTALL | re.ASCII)
    except (re.error, RecursionError, OverflowError) as failure:
        raise EvalError(f"bad regular expression {pattern!r}: {failure}") from None


@lru_cache(maxsize=512)
def _cached_ere(pattern: str) -> re.Pattern[str] | EvalError:
    try:
        return compile_posix_ere(pattern)
    except EvalError as failure:
        return failure


def match_compiled(subject: Value, compiled: re.Pattern[str]) -> int:
    """``x =~ "const"`` with the pattern compiled once at import."""
    return 1 if compiled.search(to_str(subject)) is not None else 0


def match(subject: Value, pattern: Value) -> int:
    """``x =~ y`` with a pattern known only per message (compiled once per pattern)."""
    compiled = _cached_ere(to_str(pattern))
    if isinstance(compiled, EvalError):
        raise compiled
    return 1 if compiled.search(to_str(subject)) is not None else 0
