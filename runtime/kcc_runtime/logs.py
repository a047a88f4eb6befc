"""Kamailio-style logging to stderr for the running proxy.

Kamailio 5.6 started with ``-E`` writes one line per message on stderr, measured with
an ``xlog``/``xinfo`` cfg::

     1(13740) ERROR: <script>: hello OPTIONS
     0(13617) INFO: <core> [main.c:3055]: main(): processes (at least): 6 ...
     0(13617) WARNING: sl [../../modules/tm/tm_load.h:145]: load_tm_api(): Cannot ...

that is ``<process rank>(<pid>) <LEVEL>: <module> [<file>:<line>]: <function>(): <text>``,
with ``<script>`` and no place for the script's own ``xlog``/``log`` output, ``<core>``
for the core, and the bare module name for a module. :class:`KamailioFormatter` writes
the same shape: rank 0 is the supervisor, 1..N the workers (:func:`set_rank`); records
of the ``kcc_runtime.xlog`` and ``kcc_runtime.log`` loggers are ``<script>``; records
of ``kcc_runtime.<module>`` for a cfg module name are that module; the rest is
``<core>``. The script's text is written as is: ``xlog`` messages carry their own
``\\n`` (as in Kamailio); a line is ended only when the text does not end one.

A record may carry its own level word (``extra={LEVEL_WORD: "exec"}``, Kamailio's
``LOG__`` with a level name, as the debugger's ``log_level_name``) and ask for the bare
form (``extra={BARE: True}``): ``<rank>(<pid>) <word>: <text>``, the text carrying its
own prefix, as Kamailio prints its cfgtrace lines (measured, ``modules/debugger.py``).

Levels follow Kamailio's numeric ``debug`` levels (``dprint.h``): -5 ALERT, -4 BUG,
-3/-2 CRITICAL, -1 ERROR, 0 WARNING, 1 NOTICE, 2 INFO, 3 DEBUG; a record is shown when
its level is at or above the threshold of the configured one (:func:`parse_level`).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Final, TextIO

__all__ = [
    "ALERT",
    "BARE",
    "BUG",
    "LEVEL_WORD",
    "NOTICE",
    "KamailioFormatter",
    "kamailio_level_name",
    "parse_level",
    "set_rank",
    "setup",
]

#: Kamailio's L_NOTICE, between INFO and WARNING (as ``kcc_runtime.modules.xlog``)
NOTICE: Final = logging.INFO + 5
#: Kamailio's L_BUG and L_ALERT, above L_CRIT: shown whenever CRITICAL is, and
#: printed with their own words
BUG: Final = logging.CRITICAL + 5
ALERT: Final = logging.CRITICAL + 10

#: ``LogRecord`` attribute: the level word to print instead of the level's own
LEVEL_WORD: Final = "kamailio_level_word"
#: ``LogRecord`` attribute: print ``<rank>(<pid>) <word>: <text>`` only
BARE: Final = "kamailio_bare"

#: Kamailio's numeric levels as ``logging`` thresholds
_NUMERIC: Final = {
    -5: logging.CRITICAL,
    -4: logging.CRITICAL,
    -3: logging.CRITICAL,
    -2: logging.CRITICAL,
    -1: logging.ERROR,
    0: logging.WARNING,
    1: NOTICE,
    2: logging.INFO,
    3: logging.DEBUG,
}

#: level names accepted by ``--log-level`` (Kamailio's ``L_*`` names without the
#: prefix, and the words its log lines print)
_NAMES: Final = {
    "alert": logging.CRITICAL,
    "bug": logging.CRITICAL,
    "crit": logging.CRITICAL,
    "critical": logging.CRITICAL,
    "err": logging.ERROR,
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "notice": NOTICE,
    "info": logging.INFO,
    "dbg": logging.DEBUG,
    "debug": logging.DEBUG,
}

#: the logger names whose records are the script's own output (``xlog``, ``log``)
_SCRIPT_LOGGERS: Final = frozenset({"kcc_runtime.xlog", "kcc_runtime.log"})

#: ``kcc_runtime.*`` loggers that are part of the core, not a cfg module
_CORE_PARTS: Final = frozenset(
    {
        "router",
        "script",
        "pv",
        "htable",
        "engine",
        "transport",
        "serve",
        "shm",
        "core",
        "corex",
        "sip",
    }
)

#: this process's rank (a dict, not a rebound global)
_state: dict[str, int] = {"rank": 0}


def parse_level(text: str | int) -> int | None:
    """The ``logging`` threshold of a Kamailio level: a number -5..3 (or past either
    end, clamped as Kamailio's ``debug`` is), a name (``info``, ``L_DBG``, ``warn``),
    or None when ``text`` is neither."""
    if isinstance(text, int):
        return _NUMERIC[max(-5, min(3, text))]
    word = text.strip().lower()
    if word.startswith("l_"):
        word = word[2:]
    if word.lstrip("+-").isdigit():
        return _NUMERIC[max(-5, min(3, int(word)))]
    return _NAMES.get(word)


def kamailio_level_name(levelno: int) -> str:
    """The word Kamailio prints for a level (``dprint.h``'s level names)."""
    if levelno >= ALERT:
        return "ALERT"
    if levelno >= BUG:
        return "BUG"
    if levelno >= logging.CRITICAL:
        return "CRITICAL"
    if levelno >= logging.ERROR:
        return "ERROR"
    if levelno >= logging.WARNING:
        return "WARNING"
    if levelno >= NOTICE:
        return "NOTICE"
    if levelno >= logging.INFO:
        return "INFO"
    return "DEBUG"


def set_rank(rank: int) -> None:
    """This process's rank in the log lines: 0 the supervisor, 1..N the workers."""
    _state["rank"] = rank


def _module_of(name: str) -> str | None:
    """``<script>``-style module tag of a logger name; None for the script itself."""
    if name in _SCRIPT_LOGGERS:
        return None
    prefix, _, rest = name.partition(".")
    if prefix == "kcc_runtime" and rest:
        part = rest.rsplit(".", 1)[-1]
        if rest.startswith("modules.") or part not in _CORE_PARTS:
            return part
    return "<core>"


class KamailioFormatter(logging.Formatter):
    """One Kamailio-shaped line per record (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info:
            text = text.rstrip("\n") + "\n" + self.formatException(record.exc_info)
        word = getattr(record, LEVEL_WORD, None) or kamailio_level_name(record.levelno)
        head = f"{_state['rank']:2d}({os.getpid()}) {word}: "
        module = _module_of(record.name)
        if getattr(record, BARE, False):
            line = f"{head}{text}"
        elif module is None:
            line = f"{head}<script>: {text}"
        else:
            place = f"{record.filename}:{record.lineno}"
            line = f"{head}{module} [{place}]: {record.funcName}(): {text}"
        return line if line.endswith("\n") else line + "\n"


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes formatted records as they are (the formatter ends every line)."""

    terminator = ""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 -- logging API
        # stderr closed or full: logging must never take a worker down
        return


def setup(level: int) -> None:
    """Send every ``kcc_runtime`` record at or above ``level`` to stderr in Kamailio's
    format (the root logger, so a module's own logger is covered too)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _StderrHandler):
            root.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(KamailioFormatter())
    root.addHandler(handler)
    root.setLevel(level)


def rank() -> int:
    """This process's rank (:func:`set_rank`): 0 the supervisor or a process with
    none, 1..N the workers."""
    return _state["rank"]
