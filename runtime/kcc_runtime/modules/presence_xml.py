"""PIDF/XCAP event packages (presence, presence.winfo, dialog;sla) for the
presence module.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.exports import (
    STR,
    Cmd,
    ModParam,
    ModuleExports,
    Route,
)

EXPORTS = ModuleExports(
    name="presence_xml",
    cmds=(
        Cmd("pres_check_basic", (STR, STR), Route.ANY, fixup="fixup_presxml_check"),
        Cmd("pres_check_activities", (STR, STR), Route.ANY, fixup="fixup_presxml_check"),
    ),
    params=(
        ModParam("db_url", str, "mysql://kamailio:kamailiorw@localhost/kamailio"),
        ModParam("xcap_table", str, "xcap"),
        ModParam("force_active", int, 0),
        ModParam("integrated_xcap_server", int, 0),
        ModParam("xcap_server", str, None, repeatable=True),
        ModParam("disable_presence", int, 0),
        ModParam("disable_winfo", int, 0),
        ModParam("disable_bla", int, 1),
        ModParam("disable_xcapdiff", int, 0),
        ModParam("passive_mode", int, 0),
        ModParam("xcapauth_userdel_reason", str, "probation"),
        ModParam("force_dummy_presence", int, 0),
        ModParam("force_presence_single_body", int, 0),
        ModParam("presence_single_body_priorities", str, "Available|Ringing|On the Phone"),
        ModParam("presence_single_body_lookup_element", str, "note"),
        ModParam("default_expires", int, 3600),
    ),
    depends=("presence",),
)
