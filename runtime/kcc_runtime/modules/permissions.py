"""Access control from allow/deny files and address tables
(``allow_routing``, ``allow_address``, ``allow_source_address``).

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

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
        Cmd("allow_address", (INT, STR, INT), Route.ANY, fixup="fixup_isi"),
        Cmd("allow_source_address", (INT,), Route.ANY, fixup="fixup_igp_null"),
        Cmd("allow_source_address", (), Route.ANY),
        Cmd("allow_source_address_group", (), Route.ANY),
        Cmd("allow_address_group", (STR, INT), Route.ANY, fixup="fixup_spve_igp"),
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
