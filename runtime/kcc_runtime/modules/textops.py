"""Text operations on the SIP message: header search, add and remove,
regex replacement in headers and body, body helpers.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.exports import (
    ANY,
    INT,
    PV_WRITE,
    REGEX,
    STR,
    STR_CONST,
    Cmd,
    ModuleExports,
    Route,
)

# route kinds the functions below may be used in
REQ_FAIL_BRANCH = Route.REQUEST | Route.FAILURE | Route.BRANCH
REQ_FAIL_REPLY_BRANCH = Route.REQUEST | Route.FAILURE | Route.ONREPLY | Route.BRANCH

EXPORTS = ModuleExports(
    name="textops",
    cmds=(
        # search
        Cmd("search", (REGEX,), Route.ANY, fixup="fixup_regexp_null"),
        Cmd("search_body", (REGEX,), Route.ANY, fixup="fixup_regexp_null"),
        Cmd(
            "search_hf",
            (STR_CONST, REGEX, STR_CONST),
            Route.ANY,
            const_args=True,
            fixup="fixup_search_hf",
        ),
        Cmd("search_append", (REGEX, STR_CONST), Route.ANY, fixup="fixup_regexp_none"),
        Cmd("search_append_body", (REGEX, STR_CONST), Route.ANY, fixup="fixup_regexp_none"),
        Cmd("is_present_hf", (STR,), Route.ANY, fixup="hname_fixup"),
        Cmd("search_str", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        # replace
        Cmd("replace", (REGEX, STR_CONST), Route.ANY, fixup="fixup_regexp_none"),
        Cmd("replace_str", (STR, STR, STR), Route.ANY, fixup="fixup_spve_all"),
        Cmd("replace_body", (REGEX, STR_CONST), Route.ANY, fixup="fixup_regexp_none"),
        Cmd("replace_body_str", (STR, STR, STR), Route.ANY, fixup="fixup_spve_all"),
        Cmd("replace_hdrs", (REGEX, STR_CONST), Route.ANY, fixup="fixup_regexp_none"),
        Cmd("replace_hdrs_str", (STR, STR, STR), Route.ANY, fixup="fixup_spve_all"),
        Cmd("replace_all", (REGEX, STR_CONST), Route.ANY, fixup="fixup_regexp_none"),
        Cmd("replace_body_all", (REGEX, STR_CONST), Route.ANY, fixup="fixup_regexp_none"),
        Cmd("replace_body_atonce", (REGEX, STR_CONST), Route.ANY, fixup="fixup_regexpNL_none"),
        Cmd("subst", (STR_CONST,), Route.ANY, const_args=True, fixup="fixup_substre"),
        Cmd(
            "subst_uri", (STR_CONST,), REQ_FAIL_REPLY_BRANCH, const_args=True, fixup="fixup_substre"
        ),
        Cmd(
            "subst_user",
            (STR_CONST,),
            REQ_FAIL_REPLY_BRANCH,
            const_args=True,
            fixup="fixup_substre",
        ),
        Cmd("subst_body", (STR_CONST,), Route.ANY, const_args=True, fixup="fixup_substre"),
        Cmd(
            "subst_hf",
            (STR_CONST, STR_CONST, STR_CONST),
            Route.ANY,
            const_args=True,
            fixup="fixup_subst_hf",
        ),
        # headers: add and remove
        Cmd("append_to_reply", (STR,), REQ_FAIL_BRANCH, fixup="fixup_spve_null"),
        Cmd("append_hf", (STR,), Route.ANY, const_args=True, fixup="add_header_fixup"),
        Cmd("append_hf", (STR, STR_CONST), Route.ANY, const_args=True, fixup="add_header_fixup"),
        Cmd("insert_hf", (STR,), Route.ANY, const_args=True, fixup="add_header_fixup"),
        Cmd("insert_hf", (STR, STR_CONST), Route.ANY, const_args=True, fixup="add_header_fixup"),
        Cmd("append_urihf", (STR_CONST, STR_CONST), REQ_FAIL_BRANCH, fixup="fixup_str_str"),
        Cmd("remove_hf", (STR,), Route.ANY, fixup="hname_fixup"),
        Cmd("remove_hf_idx", (STR, INT), Route.ANY, fixup="fixup_spve_igp"),
        Cmd("remove_hf_re", (REGEX,), Route.ANY, fixup="fixup_regexp_null"),
        Cmd("remove_hf_exp", (REGEX, REGEX), Route.ANY, fixup="fixup_regexp_regexp"),
        Cmd("is_present_hf_re", (REGEX,), Route.ANY, fixup="fixup_regexp_null"),
        Cmd("remove_hf_pv", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("remove_hf_re_pv", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("remove_hf_exp_pv", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        Cmd("remove_hf_match", (STR, STR, STR), Route.ANY, fixup="fixup_spve_all"),
        Cmd("is_present_hf_pv", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("is_present_hf_re_pv", (STR,), Route.ANY, fixup="fixup_spve_null"),
        Cmd("append_time", (), REQ_FAIL_BRANCH),
        Cmd("append_time_to_request", (), Route.ANY),
        # body
        Cmd("filter_body", (STR_CONST,), Route.ANY, fixup="fixup_str_null"),
        Cmd("set_body", (STR, STR), REQ_FAIL_REPLY_BRANCH, fixup="fixup_spve_spve"),
        Cmd("set_reply_body", (STR, STR), REQ_FAIL_BRANCH, fixup="fixup_spve_spve"),
        Cmd("has_body", (), Route.ANY),
        Cmd("has_body", (STR_CONST,), Route.ANY, const_args=True, fixup="fixup_body_type"),
        Cmd("set_body_multipart", (), REQ_FAIL_BRANCH),
        Cmd("set_body_multipart", (STR,), REQ_FAIL_BRANCH, fixup="fixup_spve_null"),
        Cmd("set_body_multipart", (STR, STR), REQ_FAIL_BRANCH, fixup="fixup_spve_spve"),
        Cmd(
            "set_body_multipart",
            (ANY, ANY, ANY),
            REQ_FAIL_BRANCH,
            const_args=True,
            fixup="fixup_multibody_f",
        ),
        Cmd("append_body_part", (STR, STR), REQ_FAIL_BRANCH, fixup="fixup_spve_spve"),
        Cmd(
            "append_body_part",
            (ANY, ANY, ANY),
            REQ_FAIL_BRANCH,
            const_args=True,
            fixup="fixup_multibody_f",
        ),
        Cmd("append_body_part_hex", (STR, STR), REQ_FAIL_BRANCH, fixup="fixup_spve_spve"),
        Cmd(
            "append_body_part_hex",
            (ANY, ANY, ANY),
            REQ_FAIL_BRANCH,
            const_args=True,
            fixup="fixup_multibody_f",
        ),
        Cmd("remove_body_part", (STR,), REQ_FAIL_BRANCH, fixup="fixup_spve_null"),
        Cmd(
            "get_body_part_raw",
            (STR, PV_WRITE),
            REQ_FAIL_REPLY_BRANCH,
            const_args=True,
            fixup="fixup_get_body_part",
        ),
        Cmd(
            "get_body_part",
            (STR, PV_WRITE),
            REQ_FAIL_REPLY_BRANCH,
            const_args=True,
            fixup="fixup_get_body_part",
        ),
        # request properties
        Cmd("is_method", (STR_CONST,), Route.ANY, const_args=True, fixup="fixup_method"),
        Cmd("is_privacy", (STR_CONST,), Route.ANY, const_args=True, fixup="fixup_privacy"),
        Cmd("in_list", (STR, STR, STR_CONST), Route.ANY, fixup="fixup_in_list"),
        Cmd("in_list_prefix", (STR, STR, STR_CONST), Route.ANY, fixup="fixup_in_list_prefix"),
        Cmd("is_audio_on_hold", (), Route.ANY),
        # strings
        Cmd("cmp_str", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        Cmd("cmp_istr", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        Cmd("starts_with", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        Cmd("ends_with", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        Cmd("str_find", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        Cmd("str_ifind", (STR, STR), Route.ANY, fixup="fixup_spve_spve"),
        Cmd(
            "regex_substring",
            (STR, STR, INT, INT, PV_WRITE),
            REQ_FAIL_REPLY_BRANCH,
            const_args=True,
            fixup="fixup_regex_substring",
        ),
    ),
    transformations=("re.subst",),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# functions ``subst_v/3``, ``set_body_hex/2``, ``set_reply_body_hex/2``, ``str_any_in/2``,
#   ``str_all_in/2``, ``via_param_rm/2``
