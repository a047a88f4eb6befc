"""Accounting: writes a record of transactions (and missed calls) to syslog or a
database when the message flags named by its parameters are set.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.exports import (
    STR,
    Cmd,
    FlagKind,
    ModParam,
    ModuleExports,
    Route,
)

EXPORTS = ModuleExports(
    name="acc",
    cmds=(
        Cmd("acc_log_request", (STR,), Route.ANY, fixup="acc_fixup"),
        Cmd("acc_db_request", (STR, STR), Route.ANY, fixup="acc_fixup"),
        Cmd("acc_request", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
    ),
    params=(
        ModParam("early_media", int, 0),
        ModParam("failed_transaction_flag", int, None, flag=FlagKind.MESSAGE),
        ModParam("failed_filter", str, None),
        ModParam("report_ack", int, 0),
        ModParam("report_cancels", int, 0),
        ModParam("multi_leg_info", str, None),
        ModParam("detect_direction", int, 0),
        ModParam("acc_prepare_flag", int, None, flag=FlagKind.MESSAGE),
        ModParam("acc_prepare_always", int, None),
        ModParam("reason_from_hf", int, 0),
        ModParam("acc_extra_nullable", int, 0),
        ModParam("log_flag", int, None, flag=FlagKind.MESSAGE),
        ModParam("log_missed_flag", int, None, flag=FlagKind.MESSAGE),
        ModParam("log_level", int, 1),
        ModParam("log_facility", str, "LOG_DAEMON"),
        ModParam("log_extra", str, None),
        ModParam("cdr_enable", int, None),
        ModParam("cdr_skip", str, None),
        ModParam("cdr_log_enable", int, None),
        ModParam("cdr_start_on_confirmed", int, None),
        ModParam("cdr_facility", str, "LOG_DAEMON"),
        ModParam("cdr_extra", str, None),
        ModParam("cdr_extra_nullable", int, 0),
        ModParam("cdr_start_id", str, "start_time"),
        ModParam("cdr_end_id", str, "end_time"),
        ModParam("cdr_duration_id", str, "duration"),
        ModParam("cdr_expired_dlg_enable", int, None),
        ModParam("db_flag", int, None, flag=FlagKind.MESSAGE),
        ModParam("db_missed_flag", int, None, flag=FlagKind.MESSAGE),
        ModParam("db_extra", str, None),
        ModParam("db_url", str, None),
        ModParam("db_table_acc", str, "acc"),
        ModParam("db_table_missed_calls", str, "missed_calls"),
        ModParam("acc_method_column", str, "method"),
        ModParam("acc_from_tag_column", str, "from_tag"),
        ModParam("acc_to_tag_column", str, "to_tag"),
        ModParam("acc_callid_column", str, "callid"),
        ModParam("acc_sip_code_column", str, "sip_code"),
        ModParam("acc_sip_reason_column", str, "sip_reason"),
        ModParam("acc_time_column", str, "time"),
        ModParam("db_insert_mode", int, 0),
        ModParam("time_mode", int, None),
        ModParam("time_attr", str, None),
        ModParam("time_exten", str, None),
        ModParam("cdrs_table", str, ""),
        ModParam("time_format", str, None),
        ModParam("clone_msg", int, 1),
        ModParam("cdr_on_failed", int, 1),
        ModParam("acc_extra_size", int, 64),
        ModParam("cdr_extra_size", int, 64),
    ),
    depends=("tm",),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# parameters ``cdr_duration_mode``, ``db_version_check``
