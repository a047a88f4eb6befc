"""Shared-memory hash tables (``$sht(table=>key)``) with expiry, iterators
and per-key locks.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from kcc_runtime.context import Context
from kcc_runtime.exports import (
    INT,
    STR,
    Cmd,
    ModParam,
    ModuleExports,
    PvExport,
    Route,
)
from kcc_runtime.htable import HtIterator, Table, compile_matcher

__all__ = [
    "EXPORTS",
    "sht_has_name",
    "sht_has_str_value",
    "sht_iterator_end",
    "sht_iterator_next",
    "sht_iterator_rm",
    "sht_iterator_setex",
    "sht_iterator_seti",
    "sht_iterator_sets",
    "sht_iterator_start",
    "sht_lock",
    "sht_match_name",
    "sht_match_str_value",
    "sht_print",
    "sht_reset",
    "sht_rm",
    "sht_rm_name",
    "sht_rm_name_re",
    "sht_rm_value",
    "sht_rm_value_re",
    "sht_setxi",
    "sht_setxs",
    "sht_unlock",
]

log = logging.getLogger("kcc_runtime.htable")


def _table(ctx: Context, name: str) -> Table | None:
    table = ctx.proc.htables.table(name)
    if table is None:
        log.error("cannot get hash table [%s]", name)
    return table


def sht_print(ctx: Context) -> int:
    """``sht_print()``: dump every table to the log at error level (debugging); 1."""
    for line in ctx.proc.htables.dump():
        log.error("%s", line)
    return 1


def sht_rm(ctx: Context, htname: str, itname: str) -> int:
    """``sht_rm(table, key)``: as ``$sht(table=>key) = $null``: 1 (also when the key
    is missing), -1 for an unknown table."""
    table = _table(ctx, htname)
    if table is None:
        return -1
    table.delete(itname)
    return 1


def _rm_re(ctx: Context, key: str, by_value: bool) -> int:
    name, sep, pattern = key.partition("=>")
    table = _table(ctx, name) if sep else None
    if table is None:
        return -1
    test = compile_matcher("re", pattern)
    if test is None:
        return -1
    table.remove_matching(test, by_value=by_value)
    return 1


def sht_rm_name_re(ctx: Context, key: str) -> int:
    """``sht_rm_name_re("table=>regex")``: remove the items whose name matches (POSIX
    ERE, case-insensitive): 1; -1 for an unknown table or a bad regex."""
    return _rm_re(ctx, key, by_value=False)


def sht_rm_value_re(ctx: Context, key: str) -> int:
    """``sht_rm_value_re("table=>regex")``: remove the items whose string value
    matches (int values are never removed): 1; -1 for an unknown table or a bad
    regex."""
    return _rm_re(ctx, key, by_value=True)


def _rm_items(ctx: Context, htname: str, op: str, val: str, by_value: bool) -> int:
    table = _table(ctx, htname)
    if table is None:
        return -1
    if op not in ("re", "sw"):
        log.warning("unsupported match operator: %s", op)
        return -1
    test = compile_matcher(op, val)
    if test is None:
        return -1
    table.remove_matching(test, by_value=by_value)
    return 1


def sht_rm_name(ctx: Context, htname: str, op: str, val: str) -> int:
    """``sht_rm_name(table, op, val)``: remove items by name, ``op`` ``re`` (regex)
    or ``sw`` (starts with, case-sensitive): 1; -1 for an unknown table, another
    operator or a bad regex."""
    return _rm_items(ctx, htname, op, val, by_value=False)


def sht_rm_value(ctx: Context, htname: str, op: str, val: str) -> int:
    """``sht_rm_value(table, op, val)``: as :func:`sht_rm_name` on string values."""
    return _rm_items(ctx, htname, op, val, by_value=True)


def _match(ctx: Context, htname: str, op: str, mval: str, by_value: bool) -> int:
    table = _table(ctx, htname)
    if table is None:
        return -1
    test = compile_matcher(op, mval)
    if test is None:
        return -1
    return 1 if table.any_match(test, by_value=by_value) else -1


def sht_match_name(ctx: Context, htname: str, op: str, mval: str) -> int:
    """``sht_match_name(table, op, mval)``: 1 when an item's name matches (``eq``,
    ``ne``, ``sw`` case-sensitive; ``re`` case-insensitive), else -1; -1 for an
    unknown table, another operator or a bad regex."""
    return _match(ctx, htname, op, mval, by_value=False)


def sht_has_name(ctx: Context, htname: str, op: str, mval: str) -> int:
    """Alias of :func:`sht_match_name`."""
    return _match(ctx, htname, op, mval, by_value=False)


def sht_match_str_value(ctx: Context, htname: str, op: str, mval: str) -> int:
    """``sht_match_str_value(table, op, mval)``: as :func:`sht_match_name` on the
    string values (an int value never matches: ``eq "10"`` on the int 10 is -1)."""
    return _match(ctx, htname, op, mval, by_value=True)


def sht_has_str_value(ctx: Context, htname: str, op: str, mval: str) -> int:
    """Alias of :func:`sht_match_str_value`."""
    return _match(ctx, htname, op, mval, by_value=True)


def _lock_target(ctx: Context, key: str) -> tuple[str, str] | None:
    name, sep, item = key.partition("=>")
    if not sep or ctx.proc.htables.table(name) is None:
        log.error("cannot get $sht root")
        return None
    return name, item


def sht_lock(ctx: Context, key: str) -> int:
    """``sht_lock("table=>key")``: take the (re-entrant) lock of the key's slot: 1;
    -11 for an unknown table (measured: Kamailio's "cannot get $sht root")."""
    target = _lock_target(ctx, key)
    if target is None:
        return -11
    ctx.proc.htables.lock(*target)
    return 1


def sht_unlock(ctx: Context, key: str) -> int:
    """``sht_unlock("table=>key")``: release it: 1 (also when not held); -11 for an
    unknown table."""
    target = _lock_target(ctx, key)
    if target is None:
        return -11
    ctx.proc.htables.unlock(*target)
    return 1


def sht_reset(ctx: Context, htname: str) -> int:
    """``sht_reset(table)``: remove every item: 1; -1 for an unknown table."""
    table = _table(ctx, htname)
    if table is None:
        return -1
    table.reset()
    return 1


def sht_setxs(ctx: Context, htname: str, itname: str, itval: str, exval: int) -> int:
    """``sht_setxs(table, key, value, expire)``: set a string value expiring in
    ``expire`` s (0: the table's ``autoexpire``; no expiry in a table without
    one): 1; -1 for an unknown table ("No such htable") or a write a shared table
    cannot hold (full, key or value too long: logged by the table)."""
    table = ctx.proc.htables.table(htname)
    if table is None:
        log.error("No such htable: %s", htname)
        return -1
    return 1 if table.set_ex(itname, itval, exval) else -1


def sht_setxi(ctx: Context, htname: str, itname: str, itval: int, exval: int) -> int:
    """``sht_setxi(table, key, value, expire)``: as :func:`sht_setxs` with an int.

    Kamailio 5.6 sets the item and then returns 0, which ends the script (measured:
    ``sht_setxi("a", "si", 7, 5); xlog(...)`` never logs, also as
    ``$var(r) = sht_setxi(...)``, while ``$sht(a=>si)`` is 7 in the next request);
    kcc keeps that code. -1 for an unknown table or a refused write."""
    table = ctx.proc.htables.table(htname)
    if table is None:
        log.error("No such htable: %s", htname)
        return -1
    return 0 if table.set_ex(itname, itval, exval) else -1


def sht_iterator_start(ctx: Context, iname: str, hname: str) -> int:
    """``sht_iterator_start(name, table)``: start (or restart) an iterator over a
    table: 1; -1 for an unknown table or when 4 other iterators are in use."""
    tables = ctx.proc.htables
    table = tables.table(hname)
    if table is None:
        log.error("cannot get hash table [%s]", hname)
        return -1
    return 1 if tables.iterator_start(iname, table) else -1


def _iterator(ctx: Context, iname: str) -> HtIterator | None:
    it = ctx.proc.htables.iterators.get(iname)
    if it is None:
        log.error("iterator not initialized [%s]", iname)
    return it


def sht_iterator_next(ctx: Context, iname: str) -> int:
    """``sht_iterator_next(name)``: move to the next item: 1, -1 at the end or for
    an iterator not started."""
    it = _iterator(ctx, iname)
    if it is None:
        return -1
    return 1 if it.next() else -1


def sht_iterator_end(ctx: Context, iname: str) -> int:
    """``sht_iterator_end(name)``: release the iterator: 1; -1 when unknown."""
    if not ctx.proc.htables.iterator_end(iname):
        log.error("iterator not found [%s]", iname)
        return -1
    return 1


def _current(ctx: Context, iname: str) -> HtIterator | None:
    it = _iterator(ctx, iname)
    if it is not None and it.item() is None:
        log.error("iterator not used [%s]", iname)
        return None
    return it


def sht_iterator_rm(ctx: Context, iname: str) -> int:
    """``sht_iterator_rm(name)``: remove the current item and move on: 1 when there
    is a next item, -2 when that was the last; -1 without a current item."""
    it = _current(ctx, iname)
    if it is None or it.current is None:
        return -1
    it.table.delete(it.current)
    return 1 if it.next() else -2


def _iterator_set(ctx: Context, iname: str, change: Callable[[HtIterator, str], object]) -> int:
    it = _current(ctx, iname)
    if it is None or it.current is None:
        return -1
    change(it, it.current)
    return 1


def sht_iterator_sets(ctx: Context, iname: str, sval: str) -> int:
    """``sht_iterator_sets(name, value)``: set the current item to a string: 1; -1
    without a current item."""
    return _iterator_set(ctx, iname, lambda it, key: it.table.set(key, sval))


def sht_iterator_seti(ctx: Context, iname: str, ival: int) -> int:
    """``sht_iterator_seti(name, value)``: set the current item to an int: 1; -1
    without a current item."""
    return _iterator_set(ctx, iname, lambda it, key: it.table.set(key, ival))


def sht_iterator_setex(ctx: Context, iname: str, exval: int) -> int:
    """``sht_iterator_setex(name, expire)``: the current item expires in ``expire``
    s (tables with ``autoexpire`` only): 1; -1 without a current item."""
    return _iterator_set(ctx, iname, lambda it, key: it.table.set_expires(key, exval))


EXPORTS = ModuleExports(
    name="htable",
    cmds=(
        # items
        Cmd("sht_print", (), Route.ANY, impl=sht_print),
        Cmd("sht_rm", (STR, STR), Route.ANY, fixup="fixup_spve_spve", impl=sht_rm),
        Cmd("sht_rm_name_re", (STR,), Route.ANY, fixup="fixup_ht_key", impl=sht_rm_name_re),
        Cmd("sht_rm_value_re", (STR,), Route.ANY, fixup="fixup_ht_key", impl=sht_rm_value_re),
        Cmd("sht_rm_name", (STR, STR, STR), Route.ANY, fixup="fixup_spve_all", impl=sht_rm_name),
        Cmd("sht_rm_value", (STR, STR, STR), Route.ANY, fixup="fixup_spve_all", impl=sht_rm_value),
        Cmd(
            "sht_match_name",
            (STR, STR, STR),
            Route.ANY,
            fixup="fixup_spve_all",
            impl=sht_match_name,
        ),
        Cmd("sht_has_name", (STR, STR, STR), Route.ANY, fixup="fixup_spve_all", impl=sht_has_name),
        Cmd(
            "sht_match_str_value",
            (STR, STR, STR),
            Route.ANY,
            fixup="fixup_spve_all",
            impl=sht_match_str_value,
        ),
        Cmd(
            "sht_has_str_value",
            (STR, STR, STR),
            Route.ANY,
            fixup="fixup_spve_all",
            impl=sht_has_str_value,
        ),
        Cmd("sht_lock", (STR,), Route.ANY, fixup="fixup_ht_key", impl=sht_lock),
        Cmd("sht_unlock", (STR,), Route.ANY, fixup="fixup_ht_key", impl=sht_unlock),
        Cmd("sht_reset", (STR,), Route.ANY, fixup="fixup_spve_null", impl=sht_reset),
        Cmd("sht_setxs", (STR, STR, STR, INT), Route.ANY, fixup="fixup_sssi", impl=sht_setxs),
        Cmd("sht_setxi", (STR, STR, INT, INT), Route.ANY, fixup="fixup_ssii", impl=sht_setxi),
        # iterators
        Cmd(
            "sht_iterator_start",
            (STR, STR),
            Route.ANY,
            fixup="fixup_spve_spve",
            impl=sht_iterator_start,
        ),
        Cmd(
            "sht_iterator_next", (STR,), Route.ANY, fixup="fixup_spve_null", impl=sht_iterator_next
        ),
        Cmd("sht_iterator_end", (STR,), Route.ANY, fixup="fixup_spve_null", impl=sht_iterator_end),
        Cmd("sht_iterator_rm", (STR,), Route.ANY, fixup="fixup_spve_null", impl=sht_iterator_rm),
        Cmd(
            "sht_iterator_sets",
            (STR, STR),
            Route.ANY,
            fixup="fixup_spve_spve",
            impl=sht_iterator_sets,
        ),
        Cmd(
            "sht_iterator_seti",
            (STR, INT),
            Route.ANY,
            fixup="fixup_spve_igp",
            impl=sht_iterator_seti,
        ),
        Cmd(
            "sht_iterator_setex",
            (STR, INT),
            Route.ANY,
            fixup="fixup_spve_igp",
            impl=sht_iterator_setex,
        ),
    ),
    params=(
        ModParam("htable", str, None, repeatable=True),
        ModParam("db_url", str, None),
        ModParam("key_name_column", str, "key_name"),
        ModParam("key_type_column", str, "key_type"),
        ModParam("value_type_column", str, "value_type"),
        ModParam("key_value_column", str, "key_value"),
        ModParam("expires_column", str, "expires"),
        ModParam("array_size_suffix", str, "::size"),
        ModParam("fetch_rows", int, 100),
        ModParam("timer_interval", int, 20),
        ModParam("db_expires", int, 0),
        ModParam("enable_dmq", int, 0),
        ModParam("dmq_init_sync", int, 0),
        ModParam("timer_procs", int, 0),
        ModParam("event_callback", str, None),
        ModParam("event_callback_mode", int, 0),
    ),
    pvs=(
        PvExport("sht", inner=True, writable=True),
        PvExport("shtex", inner=True, writable=True),
        PvExport("shtcn", inner=True),
        PvExport("shtcv", inner=True),
        PvExport("shtinc", inner=True),
        PvExport("shtdec", inner=True),
        PvExport("shtrecord", inner=True),
        PvExport("shtitkey", inner=True),
        PvExport("shtitval", inner=True),
    ),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# functions ``sht_is_null/2``, ``sht_inc/2``, ``sht_dec/2``
# parameters ``dmq_peer_id``
