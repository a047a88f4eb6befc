"""The RPC commands the kcc proxy answers, each declared next to its function with
the help text ``system.methodHelp`` gives, and the environment they read
(:class:`RpcEnv`: the proxy's start time, process table, shared store, location
store and cfg).

Every reply's shape was measured with ``kamcmd`` and over jsonrpcs' FIFO on Kamailio
5.6.3 running a cfg with ctl, jsonrpcs, cfg_rpc, counters, tm, tmx, sl, usrloc and
registrar (see ``tests/runtime/test_rpc_commands.py`` for the values):

- ``core.version``: one string in Kamailio's shape ``NAME VERSION (ARCH/OS) ``
  (trailing space included); kcc names itself and its version:
  ``kcc 0.1.0 (x86_64/linux) `` (see :func:`version_text`).
- ``core.uptime``: ``{now, up_since, uptime}``, times in ``ctime`` form.
- ``core.psx``: one ``{IDX, PID, DSC}`` per process: the supervisor ("main process
  - attendant", as Kamailio's), each worker ("udp receiver child=N sock=..." as
  Kamailio's receivers) and the RPC process ("ctl handler").
- ``ul.dump``/``ul.lookup``/``ul.rm``: usrloc's structures, from the shared location
  store; ``HashID`` is Kamailio's ``core_hash`` of the AoR, ``Size`` usrloc's
  ``hash_size`` table (1024), ``State`` ``CS_NEW`` in db_mode 0 and ``CS_SYNC``
  otherwise (Kamailio's state for a contact written to the database).
  ``Last-Keepalive`` is the contact's last modification (what 5.6 shows for a
  contact without keepalive), ``KA-Roundtrip`` 0.
- ``cfg.get``/``cfg.seti``/``cfg.sets``: the cfg's custom variables (``group.var =
  value``) and the core group (``core`` with the global parameters), read through the
  shared store's overrides so a value set here is what every worker's
  ``@cfg_get.group.var`` reads next.
- ``stats.get_statistics``: ``"group:name = value"`` strings, from the shared
  counters (all workers summed); ``all``, ``group:`` or a bare name, as Kamailio
  matches them (``core:rcv_requests`` matches nothing: measured).
- ``tm.stats`` and ``sl.stats``: tm's and sl's counter structures, from the same
  counters.
- ``htable.*``, ``pike.top``, ``permissions.addressReload``,
  ``stats.reset_statistics``: :mod:`kcc_runtime.rpc.modules`.
"""

from __future__ import annotations

import os
import platform
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kcc_runtime import location as loc
from kcc_runtime.engine import _core_hash
from kcc_runtime.rpc.registry import Array, Fault, Named, Params, Registry, RpcValue, Struct
from kcc_runtime.rpc.stats import sl_stats, statistic_names, tm_stats
from kcc_runtime.shared import Counters, SharedStore

if TYPE_CHECKING:
    from kcc_runtime.htable import HashTables
    from kcc_runtime.pike import PikeTree

__all__ = ["REGISTRY", "RpcEnv", "version_text"]

#: usrloc's default ``hash_size`` (2^10 slots), what ``ul.dump`` shows as Size
UL_HASH_SIZE = 1024


def version_text() -> str:
    """``core.version``'s string: Kamailio's ``kamailio 5.6.3 (x86_64/linux) ``
    shape naming kcc and its runtime version."""
    from kcc_runtime import __version__

    machine = platform.machine() or "unknown"
    system = platform.system().lower() or "unknown"
    return f"kcc {__version__} ({machine}/{system}) "


@dataclass
class RpcEnv:
    """What the commands read: the proxy as the RPC process sees it."""

    #: the cfg's custom variables and globals (``router.Config``)
    config: object
    shared: SharedStore
    started: float = field(default_factory=time.time)
    #: (pid, description) of every process, supervisor first
    processes: Callable[[], list[tuple[int, str]]] = lambda: [
        (os.getpid(), "main process - attendant")
    ]
    #: the location store (None: usrloc not loaded)
    location: loc.LocationStore | None = None
    db_mode: int = 0
    use_domain: bool = False
    modules: tuple[str, ...] = ()
    #: group -> (name -> value) of the cfg's variables, filled from ``config``
    now: Callable[[], float] = time.time
    #: htable's tables and pike's tree (the shared ones in a multi-process proxy;
    #: None: the module is not loaded)
    htables: HashTables | None = None
    pike: PikeTree | None = None
    #: permissions' ``address`` table reload (``permissions.addressReload``)
    reload_addresses: Callable[[], object] | None = None

    @property
    def counters(self) -> Counters:
        return self.shared.counters


REGISTRY: Registry[RpcEnv] = Registry()
command = REGISTRY.command


# -- system -----------------------------------------------------------------------------


@command("system.listMethods", "Lists all RPC methods supported by the server.")
def _list_methods(env: RpcEnv, params: Params) -> list[RpcValue]:
    return [Array(list(REGISTRY.names()))]


@command("system.methodHelp", "Print the help string for given method.")
def _method_help(env: RpcEnv, params: Params) -> list[RpcValue]:
    if not len(params):
        raise Fault(400, "Method Name Expected")
    found = REGISTRY.get(params.string(0))
    if found is None:
        raise Fault(400, "command not found")
    return [found.doc]


# -- core -------------------------------------------------------------------------------


@command("core.version", "Returns the version string of the server.")
def _version(env: RpcEnv, params: Params) -> list[RpcValue]:
    return [version_text()]


def _ctime(t: float) -> str:
    return time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(int(t)))


@command("core.uptime", "Returns uptime of SIP server.")
def _uptime(env: RpcEnv, params: Params) -> list[RpcValue]:
    now = env.now()
    return [
        Struct()
        .add("now", _ctime(now))
        .add("up_since", _ctime(env.started))
        .add("uptime", int(now - env.started))
    ]


@command("core.psx", "Returns the description of running processes in extended format.")
def _psx(env: RpcEnv, params: Params) -> list[RpcValue]:
    return [
        Struct().add("IDX", i).add("PID", pid).add("DSC", desc)
        for i, (pid, desc) in enumerate(env.processes())
    ]


@command("core.echo", "Returns back its parameters.")
def _echo(env: RpcEnv, params: Params) -> list[RpcValue]:
    return [params.string(i) for i in range(len(params))]


# -- usrloc -----------------------------------------------------------------------------


def _store(env: RpcEnv) -> loc.LocationStore:
    if env.location is None:
        raise Fault(500, "Domain table not found")
    return env.location


def _tables(store: loc.LocationStore) -> list[str]:
    try:
        rows = store.connection().execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'version'"
            " ORDER BY name"
        )
        names = [str(r[0]) for r in rows]
    except sqlite3.Error:
        names = []
    return names or ["location"]


def _aor(c: loc.Contact, use_domain: bool) -> str:
    return f"{c.username}@{c.domain}" if use_domain and c.domain else c.username


def _contact(env: RpcEnv, c: loc.Contact) -> Struct:
    now = env.now()
    expires = 0 if c.expires == 0 else int(c.expires - now)
    q: RpcValue = -1 if c.q < 0 else c.q / 1000.0
    unset = "[not set]"
    return (
        Struct()
        .add("Address", c.contact)
        .add("Expires", expires)
        .add("Q", float(q) if isinstance(q, int) else q)
        .add("Call-ID", c.callid)
        .add("CSeq", c.cseq)
        .add("User-Agent", c.user_agent)
        .add("Received", c.received or unset)
        .add("Path", c.path or unset)
        .add("State", "CS_NEW" if env.db_mode == 0 else "CS_SYNC")
        .add("Flags", c.flags)
        .add("CFlags", c.cflags)
        .add("Socket", c.socket or unset)
        .add("Methods", loc.ALL_METHODS if c.methods is None else c.methods)
        .add("Ruid", c.ruid or unset)
        .add("Instance", c.instance or unset)
        .add("Reg-Id", c.reg_id)
        .add("Server-Id", c.server_id)
        .add("Tcpconn-Id", c.connection_id)
        .add("Keepalive", c.keepalive)
        .add("Last-Keepalive", int(c.last_modified))
        .add("KA-Roundtrip", 0)
        .add("Last-Modified", int(c.last_modified))
    )


def _contacts(env: RpcEnv, contacts: list[loc.Contact]) -> Array:
    return Array([Named("Contact", _contact(env, c)) for c in contacts])


@command("ul.dump", "Dump user location tables.")
def _ul_dump(env: RpcEnv, params: Params) -> list[RpcValue]:
    brief = len(params) > 0 and params.string(0) == "brief"
    store = _store(env)
    domains = Array()
    for table in _tables(store):
        by_aor: dict[str, list[loc.Contact]] = {}
        for c in store.all_contacts(table):
            by_aor.setdefault(_aor(c, env.use_domain), []).append(c)
        aors = Array()
        slots: dict[int, int] = {}
        for aor, contacts in by_aor.items():
            hash_id = _core_hash(aor.encode("utf-8", "surrogateescape"), b"", 0)
            slot = hash_id & (UL_HASH_SIZE - 1)
            slots[slot] = slots.get(slot, 0) + 1
            if brief:
                aors.items.append(Named("AoR", aor))
                continue
            info = Struct().add("AoR", aor).add("HashID", hash_id)
            info.add("Contacts", _contacts(env, contacts))
            aors.items.append(Named("Info", info))
        stats = (
            Struct().add("Records", len(by_aor)).add("Max-Slots", max(slots.values(), default=0))
        )
        domain = Struct().add("Domain", table).add("Size", UL_HASH_SIZE)
        domain.add("AoRs", aors).add("Stats", stats)
        domains.items.append(Named("Domain", domain))
    return [Struct().add("Domains", domains)]


def _table_and_aor(
    env: RpcEnv, params: Params, what: str
) -> tuple[loc.LocationStore, str, str, str | None]:
    if len(params) < 2:
        raise Fault(500, f"Not enough parameters (table and AOR to {what})")
    store = _store(env)
    table = params.string(0)
    if table not in _tables(store):
        raise Fault(500, "Domain table not found")
    aor = params.string(1)
    user, _, host = aor.partition("@")
    if env.use_domain:
        return store, table, user.lower(), host.lower()
    return store, table, (user if host or not aor.startswith("sip:") else aor).lower(), None


@command("ul.lookup", "Dump one AOR entry.")
def _ul_lookup(env: RpcEnv, params: Params) -> list[RpcValue]:
    store, table, user, domain = _table_and_aor(env, params, "lookup")
    contacts = store.contacts(table, user, domain)
    if not contacts:
        raise Fault(500, "AOR not found in location table")
    aor = _aor(contacts[0], env.use_domain)
    return [Struct().add("AoR", aor).add("Contacts", _contacts(env, contacts))]


@command("ul.rm", "Delete a address of record including its contacts.")
def _ul_rm(env: RpcEnv, params: Params) -> list[RpcValue]:
    store, table, user, domain = _table_and_aor(env, params, "delete")
    try:
        with store.transaction():
            store.delete_aor(table, user, domain)
    except sqlite3.Error:
        raise Fault(500, "Failed to delete AOR") from None
    return []


# -- cfg --------------------------------------------------------------------------------


def _cfg_groups(env: RpcEnv) -> dict[str, dict[str, int | str]]:
    groups: dict[str, dict[str, int | str]] = {}
    for group, name, value in getattr(env.config, "cfg_vars", ()):
        groups.setdefault(group, {})[name] = value
    core: dict[str, int | str] = {}
    for name, value in getattr(env.config, "globals", ()):
        core[name] = value
    groups["core"] = {"debug": 0, **core}
    return groups


def _cfg_value(env: RpcEnv, group: str, name: str, declared: int | str) -> int | str:
    override = env.shared.cfg_override(group, name)
    return declared if override is None else override


@command("cfg.get", "Get the value of a configuration variable.")
def _cfg_get(env: RpcEnv, params: Params) -> list[RpcValue]:
    group = params.string(0)
    groups = _cfg_groups(env)
    if group not in groups:
        raise Fault(400, "Failed to get the variable")
    if len(params) < 2:
        out = Struct()
        for name, value in groups[group].items():
            out.add(name, _cfg_value(env, group, name, value))
        return [out]
    name = params.string(1)
    if name not in groups[group]:
        raise Fault(400, "Failed to get the variable")
    return [_cfg_value(env, group, name, groups[group][name])]


def _cfg_set(env: RpcEnv, params: Params, as_int: bool) -> list[RpcValue]:
    group = params.string(0)
    name = params.string(1)
    declared = _cfg_groups(env).get(group, {}).get(name)
    if declared is None:
        params.integer(2) if as_int else params.string(2)
        raise Fault(400, "Failed to set the variable")
    if as_int:
        number = params.integer(2)
        # a C int: Kamailio truncates (measured 99999999999 -> 1215752191)
        value: int | str = (number + 2**31) % 2**32 - 2**31
    else:
        value = params.string(2)
    if isinstance(declared, int):
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise Fault(400, "Failed to set the variable") from None
    else:
        # a string variable takes an int as its text (measured: `cfg.seti pstn gw_ip 3`)
        value = str(value)
    env.shared.set_cfg_override(group, name, value)
    return []


@command("cfg.seti", "Set the value of a configuration variable and commit the change immediately.")
def _cfg_seti(env: RpcEnv, params: Params) -> list[RpcValue]:
    return _cfg_set(env, params, True)


@command("cfg.sets", "Set the value of a configuration variable and commit the change immediately.")
def _cfg_sets(env: RpcEnv, params: Params) -> list[RpcValue]:
    return _cfg_set(env, params, False)


# -- statistics -------------------------------------------------------------------------


def _gauges(env: RpcEnv) -> dict[str, int]:
    """usrloc's statistics, computed from the location store when asked."""
    out: dict[str, int] = {}
    if env.location is None:
        return out
    users = 0
    for table in _tables(env.location):
        contacts = env.location.all_contacts(table)
        aors = {_aor(c, env.use_domain) for c in contacts}
        out[f"usrloc:{table}_contacts"] = len(contacts)
        out[f"usrloc:{table}_expires"] = 0
        out[f"usrloc:{table}_users"] = len(aors)
        users += len(aors)
    out["usrloc:registered_users"] = users
    return out


def all_statistics(env: RpcEnv) -> dict[str, int]:
    """Every statistic by ``group:name``, sorted."""
    values = {name: env.counters.get(name) for name in statistic_names(env.modules)}
    values.update(_gauges(env))
    return dict(sorted(values.items()))


@command("stats.get_statistics", "Print counter value(s)")
def _get_statistics(env: RpcEnv, params: Params) -> list[RpcValue]:
    if not len(params):
        raise Fault(400, "Please provide which stats to retrieve")
    values = all_statistics(env)
    out = Array()
    for i in range(len(params)):
        wanted = params.string(i)
        for key, value in values.items():
            group, _, name = key.partition(":")
            if wanted in ("all", f"{group}:", name):
                out.items.append(f"{key} = {value}")
    return [out]


@command("tm.stats", "Print transaction statistics.")
def _tm_stats(env: RpcEnv, params: Params) -> list[RpcValue]:
    out = Struct()
    for name, value in tm_stats(env.counters):
        out.add(name, value)
    return [out]


@command("sl.stats", "Print reply statistics.")
def _sl_stats(env: RpcEnv, params: Params) -> list[RpcValue]:
    out = Struct()
    for name, value in sl_stats(env.counters):
        out.add(name, value)
    return [out]


# the commands of htable, pike, permissions and the statistics reset register here
from kcc_runtime.rpc import modules as _modules  # noqa: E402

del _modules
