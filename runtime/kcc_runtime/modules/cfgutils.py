"""Config utilities: random events, sleeps, global flags, named locks
(``lock``/``unlock``), hashes and route existence checks.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.context import Context
from kcc_runtime.exports import (
    INT,
    LOCK,
    STR,
    Cmd,
    ModParam,
    ModuleExports,
    PvExport,
    Route,
)

__all__ = ["EXPORTS", "lock", "unlock"]


def lock(ctx: Context, name: str) -> int:
    """``lock("name")``: take the named lock (shared by every worker; recursive in
    one worker, as cfgutils' recursive locks are): 1."""
    ctx.proc.shared.lock(name)
    return 1


def unlock(ctx: Context, name: str) -> int:
    """``unlock("name")``: release it. Kamailio returns 1 even when the lock is not
    held; so does this (the store ignores the release)."""
    ctx.proc.shared.unlock(name)
    return 1


EXPORTS = ModuleExports(
    name="cfgutils",
    cmds=(
        # probabilities
        Cmd("rand_set_prob", (INT,), Route.ANY, const_args=True, fixup="fixup_prob"),
        Cmd("rand_reset_prob", (), Route.ANY),
        Cmd("rand_get_prob", (), Route.ANY),
        Cmd("rand_event", (), Route.ANY),
        # sleeping
        Cmd("sleep", (INT,), Route.ANY, fixup="fixup_igp_null"),
        Cmd("usleep", (INT,), Route.ANY, fixup="fixup_igp_null"),
        # global flags
        Cmd("set_gflag", (INT,), Route.ANY, const_args=True, fixup="fixup_gflags"),
        Cmd("reset_gflag", (INT,), Route.ANY, const_args=True, fixup="fixup_gflags"),
        Cmd("is_gflag", (INT,), Route.ANY, const_args=True, fixup="fixup_gflags"),
        # named locks
        Cmd("lock", (LOCK,), Route.ANY, fixup="fixup_spve_null", impl=lock),
        Cmd("unlock", (LOCK,), Route.ANY, fixup="fixup_spve_null", impl=unlock),
        Cmd("trylock", (LOCK,), Route.ANY, fixup="fixup_spve_null"),
        # routes
        Cmd("check_route_exists", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("route_if_exists", (STR,), Route.ANY, fixup="fixup_spve_null"),
        # memory and diagnostics
        Cmd("abort", (), Route.ANY),
        Cmd("pkg_status", (), Route.ANY),
        Cmd("shm_status", (), Route.ANY),
        Cmd("pkg_summary", (), Route.ANY),
        Cmd("shm_summary", (), Route.ANY),
        Cmd("core_hash", (STR, STR, INT), Route.ANY, const_args=True, fixup="fixup_core_hash"),
    ),
    params=(
        ModParam("initial_probability", int, 10),
        ModParam("initial_gflags", int, 0),
        ModParam("hash_file", str, None),
        ModParam("lock_set_size", int, 0),
    ),
    pvs=(PvExport("RANDOM"),),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# functions ``lock/2``, ``unlock/2``, ``trylock/2``
