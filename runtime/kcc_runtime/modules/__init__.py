"""The runtime's Kamailio modules: one file per module, each ending with its ``EXPORTS``.

:data:`MODULES` maps a module name (as in ``loadmodule "tm.so"``) to its export table;
``core`` holds the core actions and core pseudo-variables. The compiler reads these
tables through ``kcc.registry``; nothing here imports the compiler.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from kcc_runtime.exports import ModuleExports
from kcc_runtime.modules import (
    acc,
    alias_db,
    auth,
    auth_db,
    cfg_rpc,
    cfgutils,
    core,
    corex,
    counters,
    ctl,
    db_mysql,
    db_sqlite,
    debugger,
    dispatcher,
    domain,
    htable,
    jsonrpcs,
    kex,
    maxfwd,
    nathelper,
    permissions,
    pike,
    presence,
    presence_xml,
    pv,
    registrar,
    rr,
    rtpengine,
    rtpproxy,
    sanity,
    siputils,
    sl,
    speeddial,
    textops,
    textopsx,
    tls,
    tm,
    tmx,
    usrloc,
    xhttp,
    xlog,
)

__all__ = ["MODULES", "get"]

#: module name -> its export table, for every module file of this package
MODULES: Mapping[str, ModuleExports] = MappingProxyType(
    {
        exports.name: exports
        for exports in (
            acc.EXPORTS,
            alias_db.EXPORTS,
            auth.EXPORTS,
            auth_db.EXPORTS,
            cfg_rpc.EXPORTS,
            cfgutils.EXPORTS,
            core.EXPORTS,
            corex.EXPORTS,
            counters.EXPORTS,
            ctl.EXPORTS,
            db_mysql.EXPORTS,
            db_sqlite.EXPORTS,
            debugger.EXPORTS,
            dispatcher.EXPORTS,
            domain.EXPORTS,
            htable.EXPORTS,
            jsonrpcs.EXPORTS,
            kex.EXPORTS,
            maxfwd.EXPORTS,
            nathelper.EXPORTS,
            permissions.EXPORTS,
            pike.EXPORTS,
            presence.EXPORTS,
            presence_xml.EXPORTS,
            pv.EXPORTS,
            registrar.EXPORTS,
            rr.EXPORTS,
            rtpengine.EXPORTS,
            rtpproxy.EXPORTS,
            sanity.EXPORTS,
            siputils.EXPORTS,
            sl.EXPORTS,
            speeddial.EXPORTS,
            textops.EXPORTS,
            textopsx.EXPORTS,
            tls.EXPORTS,
            tm.EXPORTS,
            tmx.EXPORTS,
            usrloc.EXPORTS,
            xhttp.EXPORTS,
            xlog.EXPORTS,
        )
    }
)


def get(name: str) -> ModuleExports | None:
    """The export table of module ``name``, or None when the runtime has no file for it."""
    return MODULES.get(name)
