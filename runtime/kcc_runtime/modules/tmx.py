"""Transaction extensions: ``$T_*`` variables on the current transaction,
cancelling branches, suspending and continuing transactions.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.exports import (
    ANY,
    INT,
    REPLY_CODE,
    STR,
    STR_CONST,
    Arg,
    Cmd,
    ModParam,
    ModuleExports,
    PvExport,
    Route,
)

EXPORTS = ModuleExports(
    name="tmx",
    cmds=(
        # cancelling
        Cmd(
            "t_cancel_branches",
            (STR_CONST,),
            Route.ONREPLY,
            const_args=True,
            fixup="fixup_cancel_branches",
        ),
        Cmd(
            "t_cancel_callid",
            (STR, STR, INT),
            Route.ANY,
            const_args=True,
            fixup="fixup_cancel_callid",
        ),
        Cmd(
            "t_cancel_callid",
            (ANY, ANY, ANY, ANY),
            Route.ANY,
            const_args=True,
            fixup="fixup_cancel_callid",
        ),
        # replies by call-id
        Cmd(
            "t_reply_callid",
            (STR, STR, REPLY_CODE, STR),
            Route.ANY,
            const_args=True,
            fixup="fixup_reply_callid",
        ),
        Cmd("t_is_reply_route", (), Route.ANY),
        # suspend and continue
        Cmd("t_suspend", (), Route.ANY),
        Cmd(
            "t_continue",
            (INT, INT, Arg.route_name(Route.REQUEST)),
            Route.ANY,
            const_args=True,
            fixup="fixup_t_continue",
        ),
        Cmd("t_reuse_branch", (), Route.EVENT),
        # transaction state
        Cmd("t_flush_flags", (), Route.ANY),
        Cmd("t_flush_xflags", (), Route.ANY),
        Cmd("t_is_failure_route", (), Route.ANY),
        Cmd("t_is_branch_route", (), Route.ANY),
        Cmd("t_is_request_route", (), Route.ANY),
        Cmd("t_precheck_trans", (), Route.REQUEST),
        Cmd("t_drop", (), Route.ANY),
        Cmd("t_drop", (INT,), Route.ANY, fixup="fixup_igp_null"),
    ),
    params=(ModParam("precheck_trans", int, 1),),
    pvs=(
        PvExport("T_branch_idx", transaction=True),
        PvExport("T_reply_ruid", transaction=True),
        PvExport("T_reply_code", transaction=True),
        PvExport("T_reply_reason", transaction=True),
        PvExport("T_reply_last", transaction=True),
        PvExport("T_inv", inner=True, transaction=True),
        PvExport("T_req", inner=True, transaction=True),
        PvExport("T_rpl", inner=True, transaction=True),
        PvExport("T", inner=True, transaction=True),
        PvExport("T_branch", inner=True, transaction=True),
    ),
    depends=("tm",),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# functions ``t_uac_ack_local/2``, ``t_uac_ack_local/3``, ``t_uac_ack_local/4``,
#   ``t_cancel_branch_idx/3``, ``t_vbflag_set/1``, ``t_vbflag_reset/1``, ``t_vbflag_is_set/1``
