"""Access control from allow/deny files and address tables
(``allow_routing``, ``allow_address``, ``allow_source_address``).

The address functions are implemented over the ``address`` table (Kamailio 5.6's
permissions ``address.c``): the table named by ``address_table`` in the database of
``db_url`` (SQLite, :mod:`kcc_runtime.db`) is read into memory in each worker on
first use, as Kamailio reads it at start-up. A row whose ``ip_addr`` is an IPv4 or
IPv6 address with the full mask (32/128) is an exact address, one with a shorter
``mask`` a subnet, anything else a domain name matched literally (no DNS lookup).
``port`` 0 matches any port. Lookups try exact addresses, then subnets, then domain
names.

Measured on Kamailio 5.6.3 with ``db_sqlite`` (rows ``(1, 127.0.0.2/32, port 0)``,
``(2, 127.0.3.0/24, port 5070)``, ``(3, ::1/128, port 0)``; requests from
127.0.0.1:any): ``allow_source_address()`` -1, ``allow_source_address("2")`` -1,
``allow_source_address_group()`` -1, ``allow_address("2", "127.0.3.9", "5070")`` 1,
``allow_address("2", "127.0.3.9", "5071")`` -1, ``allow_address("3", "::1", "0")``
1, ``allow_address("1", "127.0.0.2", "9")`` 1.

**Reload.** :func:`reload_addresses` (``permissions.addressReload``) bumps a
generation counter in a shared mapping made at import (before the workers fork);
each worker re-reads the table when it sees the counter change. Without a
``db_url`` (or with ``address_file``, not supported) the table is empty and every
check is -1 after an error log line.

The allow/deny-file and ``trusted`` functions are not implemented (``kcc build``
refuses them, E0901).
"""

from __future__ import annotations

import ipaddress
import logging
import mmap
import struct
from dataclasses import dataclass, field
from typing import Final

from kcc_runtime.context import Context
from kcc_runtime.db import DbError, open_database
from kcc_runtime.exports import (
    INT,
    PV,
    STR,
    STR_CONST,
    Cmd,
    ModParam,
    ModuleExports,
    Route,
)
from kcc_runtime.kw import parse_ip
from kcc_runtime.pv import avp_key

__all__ = [
    "EXPORTS",
    "AddressTable",
    "allow_address",
    "allow_address_group",
    "allow_source_address",
    "allow_source_address_group",
    "load_addresses",
    "reload_addresses",
]

log = logging.getLogger("kcc_runtime.permissions")

_Net = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class _Entry:
    group: int
    net: _Net | None
    domain: str | None
    port: int
    tag: str | None


@dataclass(slots=True)
class AddressTable:
    """One worker's copy of the ``address`` table."""

    exact: list[_Entry] = field(default_factory=list)
    subnets: list[_Entry] = field(default_factory=list)
    domains: list[_Entry] = field(default_factory=list)
    generation: int = -1

    def add(self, group: int, ip: str, mask: int, port: int, tag: str | None) -> None:
        """One row; a bad mask for an IP is logged and skipped."""
        addr = parse_ip(ip)
        if addr is None:
            self.domains.append(_Entry(group, None, ip.lower(), port, tag))
            return
        if not 0 <= mask <= addr.max_prefixlen:
            log.error("bad mask %d for address %s: row skipped", mask, ip)
            return
        net = ipaddress.ip_network(f"{addr}/{mask}", strict=False)
        entry = _Entry(group, net, None, port, tag)
        (self.exact if mask == addr.max_prefixlen else self.subnets).append(entry)

    def match(self, addr: str, port: int, group: int | None) -> _Entry | None:
        """The first entry (of ``group``, or any) matching ``addr`` and ``port``."""
        ip = parse_ip(addr)
        lists = (self.exact, self.subnets) if ip is not None else (self.domains,)
        for entries in lists:
            for entry in entries:
                if group is not None and entry.group != group:
                    continue
                if entry.port not in (0, port):
                    continue
                if ip is None:
                    if entry.domain == addr.lower():
                        return entry
                elif entry.net is not None and ip.version == entry.net.version and ip in entry.net:
                    return entry
        return None


def load_addresses(url: str, table: str, columns: tuple[str, str, str, str, str]) -> AddressTable:
    """Read ``table`` (columns grp, ip_addr, mask, port, tag) into an
    :class:`AddressTable`, ordered by group (Kamailio keeps its subnet table sorted
    by group). :class:`DbError` when the database or table cannot be read."""
    rows = open_database(url).select(table, columns)
    out = AddressTable()
    for grp, ip, mask, port, tag in sorted(
        rows, key=lambda r: r[0] if isinstance(r[0], int) else 0
    ):
        if not isinstance(grp, int) or not isinstance(ip, str):
            log.error("bad row in %s: %r", table, (grp, ip, mask, port))
            continue
        out.add(
            grp,
            ip,
            mask if isinstance(mask, int) else 32,
            port if isinstance(port, int) else 0,
            tag if isinstance(tag, str) else None,
        )
    return out


# -- the shared reload counter and this worker's tables ---------------------------------

_GENERATION: Final = mmap.mmap(-1, 8)
_TABLES: Final[dict[tuple[str, str], AddressTable]] = {}


def _generation() -> int:
    return int(struct.unpack_from("<Q", _GENERATION, 0)[0])


def reload_addresses() -> None:
    """``permissions.addressReload``: every worker re-reads the table on its next
    check."""
    struct.pack_into("<Q", _GENERATION, 0, _generation() + 1)


def _table(ctx: Context) -> AddressTable | None:
    mp = ctx.proc.modparams
    url = mp.get(("permissions", "db_url"))
    if not isinstance(url, str) or not url:
        log.error("permissions: no db_url: the address table is empty")
        return None
    name = mp.get(("permissions", "address_table"), "address")
    table = name if isinstance(name, str) else "address"
    key = (url, table)
    current = _TABLES.get(key)
    generation = _generation()
    if current is None or current.generation != generation:

        def col(param: str, default: str) -> str:
            value = mp.get(("permissions", param), default)
            return value if isinstance(value, str) else default

        try:
            current = load_addresses(
                url,
                table,
                (
                    col("grp_col", "grp"),
                    col("ip_addr_col", "ip_addr"),
                    col("mask_col", "mask"),
                    col("port_col", "port"),
                    col("tag_col", "tag"),
                ),
            )
        except DbError as exc:
            log.error("permissions: cannot load the address table: %s", exc)
            return None
        current.generation = generation
        _TABLES[key] = current
    return current


def _set_tag(ctx: Context, entry: _Entry) -> None:
    """``peer_tag_avp``: the matching row's tag into that AVP."""
    avp = ctx.proc.modparams.get(("permissions", "peer_tag_avp"))
    if isinstance(avp, str) and avp.startswith("$avp(") and avp.endswith(")") and entry.tag:
        ctx.avps.setdefault(avp_key(avp[5:-1]), []).insert(0, entry.tag)


def allow_address(ctx: Context, group: int, addr: str, port: int) -> int:
    """``allow_address(group, addr, port)``: 1 when ``addr``/``port`` matches a row
    of ``group``, else -1."""
    table = _table(ctx)
    if table is None:
        return -1
    entry = table.match(addr, port, group)
    if entry is None:
        return -1
    _set_tag(ctx, entry)
    return 1


def allow_source_address(ctx: Context, group: int = 1) -> int:
    """``allow_source_address([group])``: :func:`allow_address` with ``$si``/``$sp``
    (group 1 by default)."""
    return allow_address(ctx, group, ctx.received.src_ip, ctx.received.src_port)


def allow_address_group(ctx: Context, addr: str, port: int) -> int:
    """``allow_address_group(addr, port)``: the group of the first row matching
    ``addr``/``port``, -1 when none does."""
    table = _table(ctx)
    if table is None:
        return -1
    entry = table.match(addr, port, None)
    if entry is None:
        return -1
    _set_tag(ctx, entry)
    return entry.group


def allow_source_address_group(ctx: Context) -> int:
    """``allow_source_address_group()``: :func:`allow_address_group` of ``$si``/``$sp``."""
    return allow_address_group(ctx, ctx.received.src_ip, ctx.received.src_port)


# route kinds the functions below may be used in
REQ_FAIL = Route.REQUEST | Route.FAILURE

EXPORTS = ModuleExports(
    name="permissions",
    cmds=(
        # allow/deny files
        Cmd("allow_routing", (), Route.ANY),
        Cmd("allow_routing", (STR_CONST,), Route.ANY, const_args=True, fixup="single_fixup"),
        Cmd(
            "allow_routing", (STR_CONST, STR_CONST), Route.ANY, const_args=True, fixup="load_fixup"
        ),
        Cmd("allow_register", (STR_CONST,), REQ_FAIL, const_args=True, fixup="single_fixup"),
        Cmd(
            "allow_register", (STR_CONST, STR_CONST), REQ_FAIL, const_args=True, fixup="load_fixup"
        ),
        Cmd("allow_uri", (STR_CONST, PV), REQ_FAIL, const_args=True, fixup="double_fixup"),
        # address tables
        Cmd("allow_trusted", (), Route.ANY),
        Cmd("allow_trusted", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        Cmd("allow_trusted", (STR, STR, STR), Route.ANY, fixup="fixup_spve_all"),
        Cmd("allow_address", (INT, STR, INT), Route.ANY, fixup="fixup_isi", impl=allow_address),
        Cmd(
            "allow_source_address",
            (INT,),
            Route.ANY,
            fixup="fixup_igp_null",
            impl=allow_source_address,
        ),
        Cmd("allow_source_address", (), Route.ANY, impl=allow_source_address),
        Cmd("allow_source_address_group", (), Route.ANY, impl=allow_source_address_group),
        Cmd(
            "allow_address_group",
            (STR, INT),
            Route.ANY,
            fixup="fixup_spve_igp",
            impl=allow_address_group,
        ),
    ),
    params=(
        ModParam("default_allow_file", str, "permissions.allow"),
        ModParam("default_deny_file", str, "permissions.deny"),
        ModParam("check_all_branches", int, 1),
        ModParam("allow_suffix", str, ".allow"),
        ModParam("deny_suffix", str, ".deny"),
        ModParam("db_url", str, None),
        ModParam("db_mode", int, 0),
        ModParam("trusted_table", str, "trusted"),
        ModParam("source_col", str, "src_ip"),
        ModParam("proto_col", str, "proto"),
        ModParam("from_col", str, "from_pattern"),
        ModParam("ruri_col", str, "ruri_pattern"),
        ModParam("tag_col", str, "tag"),
        ModParam("priority_col", str, "priority"),
        ModParam("peer_tag_avp", str, "undefined"),
        ModParam("peer_tag_mode", int, 0),
        ModParam("address_table", str, "address"),
        ModParam("address_file", str, None),
        ModParam("grp_col", str, "grp"),
        ModParam("ip_addr_col", str, "ip_addr"),
        ModParam("mask_col", str, "mask"),
        ModParam("port_col", str, "port"),
        ModParam("max_subnets", int, 512),
        ModParam("load_backends", int, 65535),
        ModParam("reload_delta", int, 5),
        ModParam("trusted_cleanup_interval", int, 60),
    ),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# functions ``allow_register_include_port/1``, ``allow_register_include_port/2``
# parameters ``subnet_match_mode``
