"""MySQL/MariaDB database driver used by the DB-backed modules; no script
functions.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.exports import (
    ModParam,
    ModuleExports,
)

EXPORTS = ModuleExports(
    name="db_mysql",
    params=(
        ModParam("ping_interval", int, 300),
        ModParam("connect_timeout", int, None),
        ModParam("send_timeout", int, None),
        ModParam("receive_timeout", int, None),
        ModParam("retries", int, None),
        ModParam("server_timezone", int, 0),
        ModParam("timeout_interval", int, 2),
        ModParam("auto_reconnect", int, 1),
        ModParam("insert_delayed", int, 0),
        ModParam("update_affected_found", int, 0),
        ModParam("unsigned_type", int, None),
        ModParam("opt_ssl_mode", int, 0),
    ),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# parameters ``opt_ssl_ca``
