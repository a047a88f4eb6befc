"""JSON-RPC server over FIFO, datagram and HTTP (with xhttp) transports.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

import logging

from kcc_runtime.context import Context
from kcc_runtime.exports import (
    STR,
    Cmd,
    ModParam,
    ModuleExports,
    PvExport,
    Route,
)

__all__ = ["EXPORTS", "jsonrpc_dispatch"]

log = logging.getLogger("kcc_runtime.jsonrpcs")


def jsonrpc_dispatch(ctx: Context) -> int:
    """``jsonrpc_dispatch()``: run the JSON-RPC request in the body of the HTTP
    request ``event_route[xhttp:request]`` serves, and answer it over HTTP
    (``Content-Type: application/json``; status 200 OK, or the fault's code and
    message: ``500 Method Not Found``). The command runs in this worker, on the
    same shared state as the RPC process's (:func:`kcc_runtime.rpc.worker.env_for`).

    Measured on Kamailio 5.6.3 (stock cfg, ``-A WITH_JSONRPC``, raw TCP client): a
    body that is not JSON is logged (``invalid json doc [[...]]``) and gets no reply
    at all, the connection staying open; 1 after a reply, -1 otherwise."""
    from kcc_runtime.rpc import jsonrpc
    from kcc_runtime.rpc.commands import REGISTRY
    from kcc_runtime.rpc.registry import Fault, Params, RpcValue
    from kcc_runtime.rpc.worker import env_for

    env = env_for(ctx.proc)

    def call(method: str, params: Params) -> list[RpcValue]:
        try:
            return REGISTRY.call(env, method, params)
        except Fault:
            raise
        except Exception as exc:  # a bug in a command must not end the route
            log.exception("RPC command %s failed", method)
            raise Fault(500, f"internal error: {exc.__class__.__name__}") from None

    pretty = ctx.proc.modparam_int("jsonrpcs", "pretty_format", 1) != 0
    _, text, fault = jsonrpc.answer(ctx.msg.body, call, pretty)
    if text is None:
        return -1
    code, reason = (200, "OK") if fault is None else (fault.code, fault.message)
    rc = ctx.proc.engine.xhttp_reply(ctx, code, reason, "application/json", text)
    return 1 if rc > 0 else -1


EXPORTS = ModuleExports(
    name="jsonrpcs",
    cmds=(
        Cmd("jsonrpc_dispatch", (), Route.REQUEST, impl=jsonrpc_dispatch),
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
