"""JSON-RPC server over FIFO, datagram and HTTP (with xhttp) transports.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.exports import (
    STR,
    Cmd,
    ModParam,
    ModuleExports,
    PvExport,
    Route,
)

EXPORTS = ModuleExports(
    name="jsonrpcs",
    cmds=(
        Cmd("jsonrpc_dispatch", (), Route.REQUEST),
        Cmd("jsonrpc_exec", (STR,), Route.ANY, fixup="fixup_spve_null"),
    ),
    params=(
        ModParam("pretty_format", int, 1),
        ModParam("transport", int, 6),
        ModParam("fifo_name", str, "kamailio_rpc.fifo"),
        ModParam("fifo_mode", int, 432),
        ModParam("fifo_group", str, None),
        ModParam("fifo_group", int, None),
        ModParam("fifo_user", str, None),
        ModParam("fifo_user", int, None),
        ModParam("fifo_reply_dir", str, "/tmp/"),
        ModParam("dgram_socket", str, "kamailio_rpc.sock"),
        ModParam("dgram_workers", int, 1),
        ModParam("dgram_timeout", int, 2000),
        ModParam("dgram_mode", int, 432),
        ModParam("dgram_group", str, None),
        ModParam("dgram_group", int, None),
        ModParam("dgram_user", str, None),
        ModParam("dgram_user", int, None),
    ),
    pvs=(PvExport("jsonrpl", inner=True),),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# parameters ``tcp_socket``
