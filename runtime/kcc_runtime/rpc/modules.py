"""RPC commands of htable, pike and permissions, and the statistics reset.

Shapes and texts measured with ``kamcmd`` and JSON-RPC over HTTP on Kamailio 5.6.3
running the stock cfg with ``-A WITH_JSONRPC -A WITH_ANTIFLOOD`` (table ``ipban``,
``size=8;autoexpire=300``), values set with ``htable.seti``/``htable.sets``, and a
flood of 40 OPTIONS from 127.0.0.2 for ``pike.top``:

- ``htable.dump ipban``: one structure per non-empty slot, by slot: ``entry`` (the
  slot: Kamailio's ``core_hash(name) & (2^size - 1)``, 30 for ``127.0.0.9``, 253 for
  ``1.2.3.4``, 20 for ``127.0.0.2`` with size 8), ``size`` (items in the slot) and
  ``slot``, an array of ``{name, value, type}`` (``int``/``str``); over JSON-RPC the
  structures form an array, ``[]`` for an empty table. Unknown table: 500 "No such
  htable".
- ``htable.get t k``: ``{item: {name, value, flags: 0, expire: "YYYY-MM-DD
  HH:MM:SS"}}`` (the expiry, local time); a missing key is 500 "Key name doesn't
  exist in htable.".
- ``htable.delete t k``: "Ok. Key deleted."; a missing key 404 "Key not found in
  htable.". ``htable.sets``/``htable.seti``: "Ok. Key set to new value.".
- ``htable.reload t``: kcc's tables have no database: 500 "No htable db_url", what
  Kamailio answers for a table without ``db_url``.
- ``pike.top [ALL|HOT|WARM]``: ``{max_hits, list: [{ip_addr, leaf_hits_prev,
  leaf_hits_curr, expires, status}], number_of_rows}``, ``expires`` in seconds from
  now (4 measured); another argument is 500 "Bad argument. Select: ALL, HOT or
  WARM".
- ``permissions.addressReload``: "Reload OK" (permissions' ``rpc_address_reload``
  text; not measured: the stock cfg needs a database for it); every worker re-reads
  the ``address`` table on its next check (``permissions.reload_addresses``).
- ``stats.reset_statistics NAME...``: no reply value (``{}`` over JSON-RPC); no
  argument: 400 "Please provide stats name".

**Resetting add-only counters.** :class:`~kcc_runtime.shm.SharedCounters` gives each
process one row that only it writes, and a reader sums the rows. A reset in one
process adds minus the current total to that process's own row: the sum is then 0,
no other process's row is touched (no lock, no lost update), and increments made by
others meanwhile still count. Gauges that Kamailio declares ``STAT_NO_RESET``
(tmx's ``active_transactions`` and ``inuse_transactions``, registrar's
configuration values) are left alone, as Kamailio does.
"""

from __future__ import annotations

import time
from typing import Final

from kcc_runtime.engine import _core_hash
from kcc_runtime.htable import Table
from kcc_runtime.rpc.commands import REGISTRY, RpcEnv, all_statistics
from kcc_runtime.rpc.registry import Array, Fault, Params, RpcValue, Struct

__all__: list[str] = []

command = REGISTRY.command

#: statistics Kamailio never resets (``STAT_NO_RESET``)
NO_RESET: Final = frozenset(
    {
        "tmx:active_transactions",
        "tmx:inuse_transactions",
        "registrar:default_expire",
        "registrar:default_expires_range",
        "registrar:expires_range",
        "registrar:max_contacts",
        "registrar:max_expires",
    }
)


def _table(env: RpcEnv, params: Params) -> Table:
    name = params.string(0)
    table = None if env.htables is None else env.htables.table(name)
    if table is None:
        raise Fault(500, "No such htable")
    return table


def _slot_bits(table: Table) -> int:
    """The slot count bits: ``size`` as given (Kamailio caps it at 2..31), else 8."""
    size = table.spec.size
    return min(max(size, 2), 31) if size > 0 else 8


@command("htable.dump", "Dump the contents of hash table.")
def _dump(env: RpcEnv, params: Params) -> list[RpcValue]:
    table = _table(env, params)
    mask = (1 << _slot_bits(table)) - 1
    slots: dict[int, list[tuple[str, int | str]]] = {}
    for key, item in table.entries():
        entry = _core_hash(key.encode("utf-8", "surrogateescape"), b"", 0) & mask
        slots.setdefault(entry, []).append((key, item.value))
    out = Array()
    for entry in sorted(slots):
        items = Array()
        for key, value in slots[entry]:
            kind = "int" if isinstance(value, int) else "str"
            items.items.append(Struct().add("name", key).add("value", value).add("type", kind))
        out.items.append(
            Struct().add("entry", entry).add("size", len(slots[entry])).add("slot", items)
        )
    return [out]


@command("htable.get", "Get one key from a hash table.")
def _get(env: RpcEnv, params: Params) -> list[RpcValue]:
    table = _table(env, params)
    key = params.string(1)
    found = next((item for name, item in table.entries() if name == key), None)
    if found is None:
        raise Fault(500, "Key name doesn't exist in htable.")
    expire = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(found.expire))
    item = Struct().add("name", key).add("value", found.value).add("flags", 0)
    return [Struct().add("item", item.add("expire", expire))]


@command("htable.delete", "Delete one key from a hash table.")
def _delete(env: RpcEnv, params: Params) -> list[RpcValue]:
    table = _table(env, params)
    key = params.string(1)
    if all(name != key for name, _ in table.entries()):
        raise Fault(404, "Key not found in htable.")
    table.delete(key)
    return ["Ok. Key deleted."]


@command("htable.sets", "Set one key in a hash table to a string value.")
def _sets(env: RpcEnv, params: Params) -> list[RpcValue]:
    table = _table(env, params)
    key, value = params.string(1), params.string(2)
    if not table.set(key, value):
        raise Fault(500, "Failed to set the item")
    return ["Ok. Key set to new value."]


@command("htable.seti", "Set one key in a hash table to an integer value.")
def _seti(env: RpcEnv, params: Params) -> list[RpcValue]:
    table = _table(env, params)
    key, value = params.string(1), params.integer(2)
    if not table.set(key, value):
        raise Fault(500, "Failed to set the item")
    return ["Ok. Key set to new value."]


@command("htable.reload", "Reload hash table.")
def _reload(env: RpcEnv, params: Params) -> list[RpcValue]:
    _table(env, params)
    raise Fault(500, "No htable db_url")


@command("pike.top", "pike.top doc.")
def _pike_top(env: RpcEnv, params: Params) -> list[RpcValue]:
    which = params.string(0).upper() if len(params) else "HOT"
    if which not in ("ALL", "HOT", "WARM"):
        raise Fault(500, "Bad argument. Select: ALL, HOT or WARM")
    tree = env.pike
    if tree is None:
        raise Fault(500, "command pike.top not found")
    now = int(env.now())
    rows = Array()
    for e in tree.top(which):
        rows.items.append(
            Struct()
            .add("ip_addr", e.ip)
            .add("leaf_hits_prev", e.leaf_hits[0])
            .add("leaf_hits_curr", e.leaf_hits[1])
            .add("expires", max(0, e.expires - now))
            .add("status", e.status)
        )
    out = Struct().add("max_hits", tree.max_hits).add("list", rows)
    return [out.add("number_of_rows", len(rows.items))]


@command("permissions.addressReload", "Reload permissions address file.")
def _address_reload(env: RpcEnv, params: Params) -> list[RpcValue]:
    if env.reload_addresses is None:
        raise Fault(500, "command permissions.addressReload not found")
    env.reload_addresses()
    return ["Reload OK"]


@command("stats.reset_statistics", "Reset counter value(s)")
def _reset_statistics(env: RpcEnv, params: Params) -> list[RpcValue]:
    if not len(params):
        raise Fault(400, "Please provide stats name")
    values = all_statistics(env)
    counters = env.counters
    for i in range(len(params)):
        wanted = params.string(i)
        for key in values:
            group, _, name = key.partition(":")
            if key in NO_RESET or wanted not in ("all", f"{group}:", name):
                continue
            current = counters.get(key)
            if current:
                counters.add(key, -current)
    return []
