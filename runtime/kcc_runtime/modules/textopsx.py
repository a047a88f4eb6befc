"""More text operations: applying changes in place, header value editing,
header and body-line iterators.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.exports import (
    ANY,
    INT,
    REGEX,
    REPLY_CODE,
    STR,
    Cmd,
    ModuleExports,
    PvExport,
    Route,
)

# route kinds the functions below may be used in
REQ_REPLY = Route.REQUEST | Route.ONREPLY
REQ_FAIL_REPLY_BRANCH = Route.REQUEST | Route.FAILURE | Route.ONREPLY | Route.BRANCH

EXPORTS = ModuleExports(
    name="textopsx",
    cmds=(
        # in-place changes
        Cmd("msg_apply_changes", (), REQ_REPLY),
        Cmd("msg_set_buffer", (STR,), REQ_REPLY, fixup="fixup_spve_null"),
        Cmd(
            "change_reply_status",
            (REPLY_CODE, STR),
            Route.ONREPLY,
            fixup="change_reply_status_fixup",
        ),
        Cmd("change_reply_status_code", (INT,), Route.ONREPLY, fixup="fixup_igp_null"),
        Cmd("remove_body", (), Route.ANY),
        Cmd("keep_hf", (), Route.ANY, fixup="fixup_regexp_null"),
        Cmd("keep_hf", (REGEX,), Route.ANY, fixup="fixup_regexp_null"),
        # matching
        Cmd("fnmatch", (STR, STR), Route.ANY, const_args=True, fixup="fixup_fnmatch"),
        Cmd("fnmatch", (STR, STR, STR), Route.ANY, const_args=True, fixup="fixup_fnmatch"),
        # header values
        Cmd(
            "append_hf_value",
            (ANY, ANY),
            REQ_FAIL_REPLY_BRANCH,
            const_args=True,
            fixup="append_hf_value_fixup",
        ),
        Cmd(
            "insert_hf_value",
            (ANY, ANY),
            REQ_FAIL_REPLY_BRANCH,
            const_args=True,
            fixup="insert_hf_value_fixup",
        ),
        Cmd(
            "remove_hf_value",
            (ANY,),
            REQ_FAIL_REPLY_BRANCH,
            const_args=True,
            fixup="remove_hf_value_fixup",
        ),
        Cmd(
            "assign_hf_value",
            (ANY, ANY),
            REQ_FAIL_REPLY_BRANCH,
            const_args=True,
            fixup="assign_hf_value_fixup",
        ),
        Cmd(
            "remove_hf_value2",
            (ANY,),
            REQ_FAIL_REPLY_BRANCH,
            const_args=True,
            fixup="remove_hf_value2_fixup",
        ),
        Cmd(
            "assign_hf_value2",
            (ANY, ANY),
            REQ_FAIL_REPLY_BRANCH,
            const_args=True,
            fixup="assign_hf_value2_fixup",
        ),
        Cmd(
            "include_hf_value",
            (ANY, ANY),
            REQ_FAIL_REPLY_BRANCH,
            const_args=True,
            fixup="include_hf_value_fixup",
        ),
        Cmd(
            "exclude_hf_value",
            (ANY, ANY),
            REQ_FAIL_REPLY_BRANCH,
            const_args=True,
            fixup="exclude_hf_value_fixup",
        ),
        Cmd(
            "hf_value_exists",
            (ANY, ANY),
            REQ_FAIL_REPLY_BRANCH,
            const_args=True,
            fixup="hf_value_exists_fixup",
        ),
        # iterators
        Cmd("hf_iterator_start", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("hf_iterator_next", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("hf_iterator_prev", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("hf_iterator_end", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("hf_iterator_rm", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("hf_iterator_append", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        Cmd("hf_iterator_insert", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        Cmd("bl_iterator_start", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("bl_iterator_next", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("bl_iterator_end", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("bl_iterator_rm", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("bl_iterator_append", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        Cmd("bl_iterator_insert", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
    ),
    pvs=(
        PvExport("hfitname", inner=True),
        PvExport("hfitbody", inner=True),
        PvExport("blitval", inner=True),
    ),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# functions ``msg_changed_route/1``
