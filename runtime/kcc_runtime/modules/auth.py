"""Digest authentication core: challenges (401/407), nonce handling and the
credential checks that back-end modules such as auth_db build on.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.exports import (
    INT,
    PV_WRITE,
    STR,
    Cmd,
    ModParam,
    ModuleExports,
    Route,
)

# route kinds the functions below may be used in
REQ_FAIL_REPLY = Route.REQUEST | Route.FAILURE | Route.ONREPLY

EXPORTS = ModuleExports(
    name="auth",
    cmds=(
        # challenges
        Cmd(
            "www_challenge",
            (STR, INT),
            REQ_FAIL_REPLY,
            const_args=True,
            fixup="fixup_auth_challenge",
        ),
        Cmd(
            "proxy_challenge",
            (STR, INT),
            REQ_FAIL_REPLY,
            const_args=True,
            fixup="fixup_auth_challenge",
        ),
        Cmd(
            "auth_challenge",
            (STR, INT),
            REQ_FAIL_REPLY,
            const_args=True,
            fixup="fixup_auth_challenge",
        ),
        Cmd(
            "pv_www_authenticate",
            (STR, STR, INT),
            Route.REQUEST,
            const_args=True,
            fixup="fixup_pv_auth",
        ),
        Cmd(
            "pv_www_authenticate",
            (STR, STR, INT, STR),
            Route.REQUEST,
            const_args=True,
            fixup="fixup_pv_auth",
        ),
        Cmd(
            "pv_proxy_authenticate",
            (STR, STR, INT),
            Route.REQUEST,
            const_args=True,
            fixup="fixup_pv_auth",
        ),
        Cmd(
            "auth_get_www_authenticate",
            (STR, INT, PV_WRITE),
            Route.REQUEST,
            const_args=True,
            fixup="fixup_auth_get_www_authenticate",
        ),
        # checks against a PV password
        Cmd(
            "pv_www_authorize",
            (STR, STR, INT),
            Route.REQUEST,
            const_args=True,
            fixup="fixup_pv_auth",
        ),
        Cmd(
            "pv_proxy_authorize",
            (STR, STR, INT),
            Route.REQUEST,
            const_args=True,
            fixup="fixup_pv_auth",
        ),
        Cmd(
            "pv_auth_check",
            (STR, STR, INT, INT),
            Route.REQUEST,
            const_args=True,
            fixup="fixup_pv_auth_check",
        ),
        # credentials
        Cmd("consume_credentials", (), Route.REQUEST),
        Cmd("has_credentials", (STR,), Route.REQUEST, fixup="fixup_spve_null"),
    ),
    params=(
        ModParam("secret", str, None),
        ModParam("nonce_expire", int, 300),
        ModParam("nonce_auth_max_drift", int, 3),
        ModParam("protect_contacts", int, None),
        ModParam("challenge_attr", str, None),
        ModParam("proxy_challenge_header", str, None),
        ModParam("www_challenge_header", str, None),
        ModParam("qop", str, None),
        ModParam("auth_checks_register", int, None),
        ModParam("auth_checks_no_dlg", int, None),
        ModParam("auth_checks_in_dlg", int, None),
        ModParam("nonce_count", int, 0),
        ModParam("nc_array_size", int, 1048576),
        ModParam("nc_array_order", int, 20),
        ModParam("one_time_nonce", int, 0),
        ModParam("otn_in_flight_no", int, 1048576),
        ModParam("otn_in_flight_order", int, 20),
        ModParam("nid_pool_no", int, 1),
        ModParam("force_stateless_reply", int, None),
        ModParam("realm_prefix", str, ""),
        ModParam("use_domain", int, None),
        ModParam("algorithm", str, None),
        ModParam("add_authinfo_hdr", int, 0),
    ),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# functions ``www_challenge/3``, ``proxy_challenge/3``, ``auth_challenge/3``, ``auth_algorithm/1``
