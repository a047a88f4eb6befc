"""User location storage for the registrar: contacts in memory with optional
database persistence; parameters only.

Exports as in Kamailio 5.6 (checked with ``kamailio -c``); route kinds, fixups and
constant-argument rules from Kamailio's export table, defaults from the module README.
"""

from __future__ import annotations

from kcc_runtime.exports import (
    FlagKind,
    ModParam,
    ModuleExports,
)

EXPORTS = ModuleExports(
    name="usrloc",
    params=(
        ModParam("ruid_column", str, "ruid"),
        ModParam("user_column", str, "username"),
        ModParam("domain_column", str, "domain"),
        ModParam("contact_column", str, "contact"),
        ModParam("expires_column", str, "expires"),
        ModParam("q_column", str, "q"),
        ModParam("callid_column", str, "callid"),
        ModParam("cseq_column", str, "cseq"),
        ModParam("flags_column", str, "flags"),
        ModParam("cflags_column", str, "cflags"),
        ModParam("db_url", str, "mysql://kamailio:kamailiorw@localhost/kamailio"),
        ModParam("timer_interval", int, 60),
        ModParam("db_mode", int, 0),
        ModParam("db_load", int, 1),
        ModParam("db_insert_update", int, 0),
        ModParam("use_domain", int, 0),
        ModParam("desc_time_order", int, 0),
        ModParam("user_agent_column", str, "user_agent"),
        ModParam("received_column", str, "received"),
        ModParam("path_column", str, "path"),
        ModParam("socket_column", str, "socket"),
        ModParam("methods_column", str, "methods"),
        ModParam("instance_column", str, "instance"),
        ModParam("reg_id_column", str, "reg_id"),
        ModParam("server_id_column", str, "server_id"),
        ModParam("connection_id_column", str, "connection_id"),
        ModParam("keepalive_column", str, "keepalive"),
        ModParam("partition_column", str, "partition"),
        ModParam("matching_mode", int, 0),
        ModParam("cseq_delay", int, 20),
        ModParam("fetch_rows", int, 2000),
        ModParam("hash_size", int, 10),
        ModParam("nat_bflag", int, None, flag=FlagKind.BRANCH),
        ModParam("handle_lost_tcp", int, 0),
        ModParam("close_expired_tcp", int, 0),
        ModParam("skip_remote_socket", int, 0),
        ModParam("preload", str, None, repeatable=True),
        ModParam("db_update_as_insert", int, 0),
        ModParam("timer_procs", int, 0),
        ModParam("db_check_update", int, 0),
        ModParam("xavp_contact", str, None),
        ModParam("db_ops_ruid", int, 1),
        ModParam("expires_type", int, 0),
        ModParam("db_raw_fetch_type", int, 0),
        ModParam("db_insert_null", int, 0),
        ModParam("server_id_filter", int, 0),
        ModParam("db_timer_clean", int, 0),
        ModParam("rm_expired_delay", int, 0),
        ModParam("version_table", int, 1),
        ModParam("ka_mode", int, 0),
        ModParam("ka_from", str, "sip:server@kamailio.org"),
        ModParam("ka_domain", str, "kamailio.org"),
        ModParam("ka_method", str, "OPTIONS"),
        ModParam("ka_filter", int, 0),
        ModParam("ka_timeout", int, 0),
        ModParam("ka_loglevel", int, 255),
        ModParam("ka_logmsg", str, " to-uri: [$tu] remote-addr: [$sas]"),
        ModParam("load_rank", int, 1),
        ModParam("db_clean_tcp", int, 0),
    ),
)

# Kamailio 6.x exports that 5.6 does not have, left out on purpose:
# parameters ``ka_interval``, ``ka_randomize``, ``ka_reply_codes``
