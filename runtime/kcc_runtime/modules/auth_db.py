"""Digest authentication against credentials stored in a database table
(``www_authorize``, ``proxy_authorize``, ``auth_check``).

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.exports import (
    INT,
    STR,
    STR_CONST,
    Cmd,
    ModParam,
    ModuleExports,
    Route,
)

EXPORTS = ModuleExports(
    name="auth_db",
    cmds=(
        Cmd("www_authorize", (STR, STR_CONST), Route.REQUEST, const_args=True, fixup="auth_fixup"),
        Cmd(
            "www_authenticate", (STR, STR_CONST), Route.REQUEST, const_args=True, fixup="auth_fixup"
        ),
        Cmd(
            "www_authenticate",
            (STR, STR_CONST, STR),
            Route.REQUEST,
            const_args=True,
            fixup="auth_fixup",
        ),
        Cmd(
            "proxy_authorize", (STR, STR_CONST), Route.REQUEST, const_args=True, fixup="auth_fixup"
        ),
        Cmd(
            "proxy_authenticate",
            (STR, STR_CONST),
            Route.REQUEST,
            const_args=True,
            fixup="auth_fixup",
        ),
        Cmd(
            "auth_check",
            (STR, STR_CONST, INT),
            Route.REQUEST,
            const_args=True,
            fixup="auth_check_fixup",
        ),
        Cmd(
            "is_subscriber",
            (STR, STR_CONST, INT),
            Route.ANY,
            const_args=True,
            fixup="auth_check_fixup",
        ),
    ),
    params=(
        ModParam("db_url", str, "mysql://kamailioro:kamailioro@localhost/kamailio"),
        ModParam("user_column", str, "username"),
        ModParam("domain_column", str, "domain"),
        ModParam("password_column", str, "ha1"),
        ModParam("password_column_2", str, "ha1b"),
        ModParam("calculate_ha1", int, 0),
        ModParam("use_domain", int, 0),
        ModParam("load_credentials", str, None),
        ModParam("version_table", int, 1),
        ModParam("force_generate_avps", int, 0),
    ),
    depends=("auth",),
)
