"""Python names for everything a config names: route blocks, defines, flags, temporaries.

Generated names are deterministic (the same cfg gives the same names on every run, on
every machine, whatever else the config contains for route functions) and readable: a
name the cfg spells as a Python identifier keeps its spelling, so a grep for
``RELAY`` finds both ``route[RELAY]`` and ``route_RELAY``.

Route functions (:func:`route_function_name`)
---------------------------------------------

======================================  ======================================
cfg block                               Python function
======================================  ======================================
``request_route``, ``route``,           ``request_route``
``route[0]``
``route[NAME]``                         ``route_<NAME>``
``failure_route[NAME]``                 ``failure_route_<NAME>``
``branch_route[NAME]``                  ``branch_route_<NAME>``
``onreply_route[NAME]``                 ``onreply_route_<NAME>``
``reply_route``, ``onreply_route``,     ``reply_route`` (the core reply route)
``onreply_route[0]``
``onsend_route``                        ``onsend_route``
``event_route[mod:event]``              ``event_route_<mod>__<event>``
======================================  ======================================

An unnamed (or ``[0]``) ``failure_route``/``branch_route`` is ``failure_route``/
``branch_route``, following Kamailio, which stores ``[0]`` in the unnamed slot.

The prefixes end in ``_`` and none is a prefix of another or equal to an unnamed
function's name, so names of different kinds never meet; within a kind the name is the
prefix plus :func:`mangle` of the cfg name, which is injective. Route function names
are therefore collision-free by construction and never Python keywords.

The mangling scheme (:func:`mangle`)
------------------------------------

The cfg name is encoded as UTF-8 (lone surrogates, as left by a ``surrogateescape``
read, encode with ``surrogatepass``, so every ``str`` has one byte string). Then, byte by
byte:

- ASCII letters and digits are kept;
- ``_`` is kept, except where the decoder below would misread it: then it is ``_x5f``;
- in event-route names the separator ``:`` is ``__`` (``xhttp:request`` →
  ``xhttp__request``);
- every other byte is ``_x`` and two lower-case hex digits (``-`` → ``_x2d``,
  ``é`` → ``_xc3_xa9``, space → ``_x20``).

So ``route[1a]`` is ``route_1a``, ``route["a b"]`` is ``route_a_x20b``,
``event_route[core:worker-one-init]`` is ``event_route_core__worker_x2done_x2dinit``
and ``event_route[tm:branch-failure:RETRY]`` is
``event_route_tm__branch_x2dfailure__RETRY``. Decoding (:func:`unmangle`) reads left to
right: at ``_``, a following ``_`` is the separator (event names only), a following
``x`` and two lower-case hex digits is that byte, anything else is a literal ``_``. The
encoder escapes exactly the ``_`` the decoder would otherwise take for the start of an
escape or separator, so decoding inverts encoding: the mapping is injective.

Other names
-----------

Defines and flags become module constants spelled as in the cfg
(:meth:`NameTable.constant`). A name that is a Python keyword, a builtin, or one of the
names the generated module binds itself (:data:`GENERATED_NAMES`, the runtime module
names such as ``tm``, ``sl``, ``pv``) gets a trailing ``_`` (``class`` → ``class_``); a
name that is not an identifier at all is mangled (with a leading digit escaped). The
:class:`NameTable` then makes every handed-out name unique in its scope with a ``_2``,
``_3``... suffix, deterministically in the order names are claimed: the generator claims
route functions first, then constants in source order, then locals per function.
Temporaries are ``_t1``, ``_t2``... per function.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from kcc.ast import RouteKind

__all__ = [
    "BUILTIN_NAMES",
    "GENERATED_NAMES",
    "KEYWORDS",
    "NameTable",
    "default_reserved",
    "identifier",
    "mangle",
    "route_function_name",
    "unmangle",
]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Python 3.11-3.13 keywords and soft keywords, frozen here so names do not depend on
#: the interpreter that runs the compiler.
KEYWORDS: frozenset[str] = _words(
    "False None True and as assert async await break class continue def del elif else "
    "except finally for from global if import in is lambda nonlocal not or pass raise "
    "return try while with yield _ case match type"
)

#: Python builtins (3.11 to 3.13), frozen for the same reason; a test checks that the
#: running interpreter has none that is missing here.
BUILTIN_NAMES: frozenset[str] = _words(
    "ArithmeticError AssertionError AttributeError BaseException BaseExceptionGroup "
    "BlockingIOError BrokenPipeError BufferError BytesWarning ChildProcessError "
    "ConnectionAbortedError ConnectionError ConnectionRefusedError ConnectionResetError "
    "DeprecationWarning EOFError Ellipsis EncodingWarning EnvironmentError Exception "
    "ExceptionGroup False FileExistsError FileNotFoundError FloatingPointError "
    "FutureWarning GeneratorExit IOError ImportError ImportWarning IndentationError "
    "IndexError InterruptedError IsADirectoryError KeyError KeyboardInterrupt "
    "LookupError MemoryError ModuleNotFoundError NameError None NotADirectoryError "
    "NotImplemented NotImplementedError OSError OverflowError PendingDeprecationWarning "
    "PermissionError ProcessLookupError PythonFinalizationError RecursionError "
    "ReferenceError ResourceWarning RuntimeError RuntimeWarning StopAsyncIteration "
    "StopIteration SyntaxError SyntaxWarning SystemError SystemExit TabError "
    "TimeoutError True TypeError UnboundLocalError UnicodeDecodeError "
    "UnicodeEncodeError UnicodeError UnicodeTranslateError UnicodeWarning UserWarning "
    "ValueError Warning ZeroDivisionError __build_class__ __debug__ __doc__ __import__ "
    "__loader__ __name__ __package__ __spec__ _IncompleteInputError abs aiter all anext "
    "any ascii bin bool breakpoint bytearray bytes callable chr classmethod compile "
    "complex copyright credits delattr dict dir divmod enumerate eval exec exit filter "
    "float format frozenset getattr globals hasattr hash help hex id input int "
    "isinstance issubclass iter len license list locals map max memoryview min next "
    "object oct open ord pow print property quit range repr reversed round set setattr "
    "slice sorted staticmethod str sum super tuple type vars zip"
)

#: Names every generated module binds or may bind itself: the context parameter, its
#: imports, its module-level tables and the traceback rewriter's constants.
GENERATED_NAMES: frozenset[str] = _words(
    "ctx kcc_runtime annotations typing Final MODPARAMS ROUTER __kcc_source__ "
    "__kcc_routes__ __file__ __builtins__ __annotations__ __all__ "
    "BranchContext Context EventContext FailureContext OnsendContext ReplyContext "
    "RequestContext Router ScriptExit ScriptDrop ScriptReturn"
)

#: ``NameTable.temp()`` names: ``_t1``, ``_t2``...
TEMP_PREFIX = "_t"

_ALNUM = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_UNDERSCORE = ord("_")
_ESCAPE_AHEAD = re.compile(r"x[0-9a-f]{2}")
_SEPARATOR = ":"


def _misread(rest: str, *, event: bool) -> bool:
    """Would the decoder take ``_`` followed by ``rest`` for an escape or a separator?"""
    return bool(_ESCAPE_AHEAD.match(rest)) or (event and rest.startswith("_"))


def mangle(text: str, *, event: bool = False) -> str:
    """``text`` as a run of ``[A-Za-z0-9_]`` (see the module docstring for the scheme).

    With ``event=True`` a ``:`` is the separator ``__`` (event-route names). The result
    may be empty or start with a digit: it is meant to follow a prefix.
    """
    encoded = text.encode("utf-8", "surrogatepass")
    separator = _SEPARATOR.encode() if event else None
    # right to left, so each `_` can look at what follows it in the output
    out: list[str] = []
    tail = ""
    for index in range(len(encoded) - 1, -1, -1):
        byte = encoded[index]
        if byte in _ALNUM:
            piece = chr(byte)
        elif byte == _UNDERSCORE:
            piece = "_x5f" if _misread(tail, event=event) else "_"
        elif separator is not None and byte == separator[0]:
            piece = "__"
        else:
            piece = f"_x{byte:02x}"
        out.append(piece)
        tail = piece + tail[:3]
    return "".join(reversed(out))


def unmangle(fragment: str, *, event: bool = False) -> str:
    """The inverse of :func:`mangle`. Raises ``ValueError`` for text it never produces."""
    out = bytearray()
    pos = 0
    while pos < len(fragment):
        char = fragment[pos]
        if char != "_":
            if not char.isascii() or not char.isalnum():
                raise ValueError(f"not a mangled name: {fragment!r}")
            out.append(ord(char))
            pos += 1
        elif event and fragment.startswith("_", pos + 1):
            out += _SEPARATOR.encode()
            pos += 2
        elif _ESCAPE_AHEAD.match(fragment, pos + 1):
            out.append(int(fragment[pos + 2 : pos + 4], 16))
            pos += 4
        else:
            out.append(_UNDERSCORE)
            pos += 1
    try:
        return out.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not a mangled name: {fragment!r}") from exc


def identifier(text: str, reserved: frozenset[str] = frozenset()) -> str:
    """A standalone Python identifier for a cfg name, as close to its spelling as possible.

    An ASCII identifier is kept; anything else is mangled, with a leading digit escaped
    (``1x`` → ``_x31x``). A keyword, builtin or ``reserved`` name gets a trailing ``_``.
    Not injective on its own (``class`` and ``class_`` meet): :class:`NameTable` settles that.
    """
    if text.isascii() and text.isidentifier():
        name = text
    else:
        name = mangle(text)
        if not name or name[0].isdigit():
            first = f"_x{ord(name[0]):02x}" if name else "_"
            name = first + name[1:]
    if name in KEYWORDS or name in BUILTIN_NAMES or name in reserved:
        name += "_"
    return name


_ROUTE_PREFIX: dict[RouteKind, str] = {
    RouteKind.ROUTE: "route",
    RouteKind.FAILURE: "failure_route",
    RouteKind.BRANCH: "branch_route",
    RouteKind.ONREPLY: "onreply_route",
    RouteKind.ONSEND: "onsend_route",
    RouteKind.EVENT: "event_route",
}


def route_function_name(kind: RouteKind, name: str | None) -> str:
    """The Python function for a route block (table in the module docstring).

    Blocks Kamailio stores in the same slot get the same name (``route[0]`` and
    ``request_route``; ``onreply_route[0]`` and ``reply_route``), so a block appended to
    an earlier one (Kamailio merges them) maps to the one function.
    """
    if kind is RouteKind.REQUEST or (kind is RouteKind.ROUTE and name in (None, "0")):
        return "request_route"
    if kind is RouteKind.REPLY or (kind is RouteKind.ONREPLY and name in (None, "0")):
        return "reply_route"
    prefix = _ROUTE_PREFIX[kind]
    if name is None or (name == "0" and kind is not RouteKind.EVENT):
        return prefix
    return f"{prefix}_{mangle(name, event=kind is RouteKind.EVENT)}"


def default_reserved() -> frozenset[str]:
    """Names a generated module must not hand out: keywords, builtins,
    :data:`GENERATED_NAMES` and every runtime module (``tm``, ``sl``, ``pv``, ``core``...),
    which the module may import under its own name."""
    from kcc_runtime import __all__ as runtime_names
    from kcc_runtime.modules import MODULES

    return (
        KEYWORDS | BUILTIN_NAMES | GENERATED_NAMES | frozenset(MODULES) | frozenset(runtime_names)
    )


class NameTable:
    """Unique names in one scope, deterministic in the order they are claimed.

    The module scope is ``NameTable()`` (reserving :func:`default_reserved`); a function
    scope is ``table.child()``. A child never hands out a name its ancestors have, and an
    ancestor never hands out a name one of its descendants has (so a later module
    constant cannot shadow an earlier local); sibling scopes may reuse names (two route
    functions may each have an ``_t1``).
    """

    def __init__(
        self, reserved: Iterable[str] | None = None, *, parent: NameTable | None = None
    ) -> None:
        self._parent = parent
        self._reserved: frozenset[str] = (
            frozenset(reserved)
            if reserved is not None
            else (frozenset() if parent is not None else default_reserved())
        )
        self._names: set[str] = set()
        self._below: set[str] = set()
        self._routes: dict[tuple[RouteKind, str | None], str] = {}
        self._route_slots: dict[str, str] = {}  # canonical name -> name handed out
        self._constants: dict[str, str] = {}
        self._temps = 0

    def child(self, reserved: Iterable[str] = ()) -> NameTable:
        """A nested scope (a function body)."""
        return NameTable(reserved, parent=self)

    def _scopes(self) -> Iterable[NameTable]:
        scope: NameTable | None = self
        while scope is not None:
            yield scope
            scope = scope._parent

    def is_taken(self, name: str) -> bool:
        """Reserved or handed out here, in an enclosing scope or in a nested one."""
        if name in self._below:
            return True
        return any(name in s._names or name in s._reserved for s in self._scopes())

    def _take(self, name: str) -> str:
        self._names.add(name)
        for scope in self._scopes():
            if scope is not self:
                scope._below.add(name)
        return name

    def claim(self, preferred: str) -> str:
        """``preferred`` if it is free, else ``preferred_2``, ``preferred_3``...

        ``preferred`` must be a valid identifier (use :func:`identifier` for cfg text).
        """
        if not preferred.isidentifier():
            raise ValueError(f"not a Python identifier: {preferred!r}")
        name = preferred
        suffix = 2
        while self.is_taken(name) or name in KEYWORDS:
            name = f"{preferred}_{suffix}"
            suffix += 1
        return self._take(name)

    def route(self, kind: RouteKind, name: str | None) -> str:
        """The function name of a route block; the same block always gets the same name."""
        key = (kind, name)
        found = self._routes.get(key)
        if found is None:
            wanted = route_function_name(kind, name)
            found = self._route_slots.get(wanted)
            if found is None:
                found = self._route_slots[wanted] = self.claim(wanted)
            self._routes[key] = found
        return found

    def constant(self, cfg_name: str) -> str:
        """The module constant for a define or flag, spelled as in the cfg where possible."""
        found = self._constants.get(cfg_name)
        if found is None:
            found = self.claim(identifier(cfg_name, self._all_reserved()))
            self._constants[cfg_name] = found
        return found

    def temp(self) -> str:
        """A fresh temporary: ``_t1``, ``_t2``... skipping any name already taken."""
        while True:
            self._temps += 1
            name = f"{TEMP_PREFIX}{self._temps}"
            if not self.is_taken(name):
                return self._take(name)

    def _all_reserved(self) -> frozenset[str]:
        reserved: frozenset[str] = frozenset()
        for scope in self._scopes():
            reserved |= scope._reserved
        return reserved
