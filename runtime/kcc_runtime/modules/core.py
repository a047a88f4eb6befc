"""Kamailio's core actions written like functions (``forward``, ``setflag``, ``seturi`` ...)
and the pseudo-variables the core registers itself (``$rc``, ``$env(NAME)`` ...).

``drop``, ``exit``, ``return`` and ``break`` are statements, not functions. The grammar
(``cfg.y``) takes literal tokens for almost every core action, so their arguments must be
constants; ``route()`` and ``cfg_select()`` take expressions. In ``onsend_route`` only
the flag functions, ``log`` and the ``set_{forward,reply}_*`` switches are allowed
(Kamailio 5.6 also rejects ``route()`` there, although newer grammars list it).
"""

from __future__ import annotations

from kcc_runtime.exports import (
    ANY,
    HOSTPORT,
    INT,
    INT_CONST,
    STR_CONST,
    Arg,
    Cmd,
    FlagKind,
    ModuleExports,
    PvExport,
    Route,
)

#: every route kind but ``onsend_route`` (a parse error there)
NOT_ONSEND = Route.ANY & ~Route.ONSEND
MSG_FLAG = Arg.flag_of(FlagKind.MESSAGE)


def _uri_setters(*names: str) -> tuple[Cmd, ...]:
    """One ``(STRING)`` action under each of its spellings."""
    return tuple(Cmd(name, (STR_CONST,), NOT_ONSEND, const_args=True) for name in names)


EXPORTS = ModuleExports(
    name="core",
    cmds=(
        # stateless forwarding: forward() uses $du or the R-URI
        Cmd("forward", (), NOT_ONSEND),
        Cmd("forward", (HOSTPORT,), NOT_ONSEND, const_args=True),
        Cmd("forward", (HOSTPORT, INT_CONST), NOT_ONSEND, const_args=True),
        Cmd("forward_udp", (HOSTPORT,), NOT_ONSEND, const_args=True),
        Cmd("forward_udp", (HOSTPORT, INT_CONST), NOT_ONSEND, const_args=True),
        Cmd("forward_tcp", (HOSTPORT,), NOT_ONSEND, const_args=True),
        Cmd("forward_tcp", (HOSTPORT, INT_CONST), NOT_ONSEND, const_args=True),
        Cmd("forward_tls", (HOSTPORT,), NOT_ONSEND, const_args=True),
        Cmd("forward_tls", (HOSTPORT, INT_CONST), NOT_ONSEND, const_args=True),
        Cmd("forward_sctp", (HOSTPORT,), NOT_ONSEND, const_args=True),
        Cmd("forward_sctp", (HOSTPORT, INT_CONST), NOT_ONSEND, const_args=True),
        # message flags
        Cmd("setflag", (MSG_FLAG,), Route.ANY, const_args=True),
        Cmd("resetflag", (MSG_FLAG,), Route.ANY, const_args=True),
        Cmd("isflagset", (MSG_FLAG,), Route.ANY, const_args=True),
        # sub-routes
        Cmd("route", (Arg.route_name(Route.REQUEST),), NOT_ONSEND),
        # logging and external commands
        Cmd("log", (STR_CONST,), Route.ANY, const_args=True),
        Cmd("log", (INT_CONST, STR_CONST), Route.ANY, const_args=True),
        Cmd("error", (STR_CONST, STR_CONST), NOT_ONSEND, const_args=True),
        Cmd("exec", (STR_CONST,), NOT_ONSEND, const_args=True),
        # the request URI, part by part (aliases are separate spellings)
        *_uri_setters("rewritehost", "sethost", "seth"),
        *_uri_setters("rewritehostport", "sethostport", "sethp"),
        *_uri_setters("rewritehostporttrans", "sethostporttrans", "sethpt"),
        *_uri_setters("rewriteport", "setport", "setp"),
        *_uri_setters("rewriteuser", "setuser", "setu"),
        *_uri_setters("rewriteuserpass", "setuserpass", "setup"),
        *_uri_setters("rewriteuri", "seturi"),
        *_uri_setters("prefix"),
        Cmd("strip", (INT_CONST,), NOT_ONSEND, const_args=True),
        Cmd("strip_tail", (INT_CONST,), NOT_ONSEND, const_args=True),
        Cmd("revert_uri", (), NOT_ONSEND),
        Cmd("userphone", (), NOT_ONSEND),
        # branches
        Cmd("remove_branch", (), NOT_ONSEND),
        Cmd("remove_branch", (INT_CONST,), NOT_ONSEND, const_args=True),
        Cmd("clear_branches", (), NOT_ONSEND),
        # Via and connection handling
        Cmd("force_rport", (), NOT_ONSEND),
        Cmd("add_rport", (), NOT_ONSEND),
        Cmd("add_local_rport", (), NOT_ONSEND),
        Cmd("force_tcp_alias", (), NOT_ONSEND),
        Cmd("force_tcp_alias", (INT_CONST,), NOT_ONSEND, const_args=True),
        Cmd("add_tcp_alias", (), NOT_ONSEND),
        Cmd("add_tcp_alias", (INT_CONST,), NOT_ONSEND, const_args=True),
        Cmd("udp_mtu_try_proto", (ANY,), NOT_ONSEND, const_args=True),
        # sockets and advertised addresses
        Cmd("set_advertised_address", (STR_CONST,), NOT_ONSEND, const_args=True),
        Cmd("set_advertised_port", (INT_CONST,), NOT_ONSEND, const_args=True),
        Cmd("force_send_socket", (HOSTPORT,), NOT_ONSEND, const_args=True),
        Cmd("set_forward_no_connect", (), Route.ANY),
        Cmd("set_reply_no_connect", (), Route.ANY),
        Cmd("set_forward_close", (), Route.ANY),
        Cmd("set_reply_close", (), Route.ANY),
        # configuration-framework groups
        Cmd("cfg_select", (STR_CONST, INT), NOT_ONSEND),
        Cmd("cfg_reset", (STR_CONST,), NOT_ONSEND, const_args=True),
    ),
    pvs=(
        PvExport("?"),
        PvExport("rc"),
        PvExport("retcode"),
        PvExport("env", inner=True),
        PvExport("envn", inner=True),
        PvExport("def", inner=True),
        PvExport("defn", inner=True),
        PvExport("null"),
    ),
)

# Kamailio 6.x core variables that 5.6 does not have, left out on purpose:
# ``$defv(NAME)``, ``$defs(NAME)``, ``$iuid``.
