"""The binrpc control socket that ``kamcmd`` talks to; parameters only.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.exports import (
    ModParam,
    ModuleExports,
)

EXPORTS = ModuleExports(
    name="ctl",
    params=(
        ModParam("fifo", str, None, repeatable=True),
        ModParam("binrpc", str, "unix:/run/kamailio/kamailio_ctl", repeatable=True),
        ModParam("mode", int, 384),
        ModParam("user", str, None, repeatable=True),
        ModParam("group", str, None, repeatable=True),
        ModParam("autoconversion", int, None),
        ModParam("binrpc_max_body_size", int, 32),
        ModParam("binrpc_struct_max_body_size", int, 8),
        ModParam("binrpc_buffer_size", int, 1024),
    ),
)
