"""Shared-memory hash tables (``$sht(table=>key)``) with expiry, iterators
and per-key locks.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.exports import (
    INT,
    STR,
    Cmd,
    ModParam,
    ModuleExports,
    PvExport,
    Route,
)

EXPORTS = ModuleExports(
    name="htable",
    cmds=(
        # items
        Cmd("sht_print", (), Route.ANY),
        Cmd("sht_rm", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        Cmd("sht_rm_name_re", (STR,), Route.ANY, fixup="fixup_ht_key"),
        Cmd("sht_rm_value_re", (STR,), Route.ANY, fixup="fixup_ht_key"),
        Cmd("sht_rm_name", (STR, STR, STR), Route.ANY, fixup="fixup_spve_all"),
        Cmd("sht_rm_value", (STR, STR, STR), Route.ANY, fixup="fixup_spve_all"),
        Cmd("sht_match_name", (STR, STR, STR), Route.ANY, fixup="fixup_spve_all"),
        Cmd("sht_has_name", (STR, STR, STR), Route.ANY, fixup="fixup_spve_all"),
        Cmd("sht_match_str_value", (STR, STR, STR), Route.ANY, fixup="fixup_spve_all"),
        Cmd("sht_has_str_value", (STR, STR, STR), Route.ANY, fixup="fixup_spve_all"),
        Cmd("sht_lock", (STR,), Route.ANY, fixup="fixup_ht_key"),
        Cmd("sht_unlock", (STR,), Route.ANY, fixup="fixup_ht_key"),
        Cmd("sht_reset", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("sht_setxs", (STR, STR, STR, INT), Route.ANY, fixup="fixup_sssi"),
        Cmd("sht_setxi", (STR, STR, INT, INT), Route.ANY, fixup="fixup_ssii"),
        # iterators
        Cmd("sht_iterator_start", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        Cmd("sht_iterator_next", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("sht_iterator_end", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("sht_iterator_rm", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("sht_iterator_sets", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        Cmd("sht_iterator_seti", (STR, INT), Route.ANY, fixup="fixup_spve_igp"),
        Cmd("sht_iterator_setex", (STR, INT), Route.ANY, fixup="fixup_spve_igp"),
    ),
    params=(
        ModParam("htable", str, None, repeatable=True),
        ModParam("db_url", str, None),
        ModParam("key_name_column", str, "key_name"),
        ModParam("key_type_column", str, "key_type"),
        ModParam("value_type_column", str, "value_type"),
        ModParam("key_value_column", str, "key_value"),
        ModParam("expires_column", str, "expires"),
        ModParam("array_size_suffix", str, "::size"),
        ModParam("fetch_rows", int, 100),
        ModParam("timer_interval", int, 20),
        ModParam("db_expires", int, 0),
        ModParam("enable_dmq", int, 0),
        ModParam("dmq_init_sync", int, 0),
        ModParam("timer_procs", int, 0),
        ModParam("event_callback", str, None),
        ModParam("event_callback_mode", int, 0),
    ),
    pvs=(
        PvExport("sht", inner=True, writable=True),
        PvExport("shtex", inner=True, writable=True),
        PvExport("shtcn", inner=True),
        PvExport("shtcv", inner=True),
        PvExport("shtinc", inner=True),
        PvExport("shtdec", inner=True),
        PvExport("shtrecord", inner=True),
        PvExport("shtitkey", inner=True),
        PvExport("shtitval", inner=True),
    ),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# functions ``sht_is_null/2``, ``sht_inc/2``, ``sht_dec/2``
# parameters ``dmq_peer_id``
