"""RPC commands to read and change configuration-framework variables at run
time; no script functions.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.exports import ModuleExports

EXPORTS = ModuleExports(
    name="cfg_rpc",
)
