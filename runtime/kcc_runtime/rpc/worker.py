"""RPC commands run in a SIP worker: jsonrpcs' ``jsonrpc_dispatch()`` (JSON-RPC
over HTTP, from ``event_route[xhttp:request]``).

Kamailio runs an RPC command in whichever process receives it: over HTTP that is
the SIP worker that read the request. The commands here read the same shared
state as in the RPC process (:mod:`kcc_runtime.rpc.commands`), so a worker builds
the same :class:`~kcc_runtime.rpc.commands.RpcEnv` from its
:class:`~kcc_runtime.context.Process`: the shared store (``$shv``-table entries,
cfg overrides, the statistics counters summed over every process), the location
store (the one the registrar uses in this worker, opened here if it is not yet), and two facts
only the supervisor knows, which it publishes in the shared store before forking
(:func:`publish`): when the proxy started (``core.uptime``) and the description
of each process rank (``core.psx``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

from kcc_runtime.rpc.commands import RpcEnv

if TYPE_CHECKING:
    from kcc_runtime.context import Process
    from kcc_runtime.shared import SharedStore

__all__ = ["address_reload", "describe_processes", "env_for", "publish"]

#: ``$shv``-table names (NUL-prefixed: no script can write them)
STARTED_KEY: Final = "\0rpc:started"
_PSX_COUNT_KEY: Final = "\0rpc:psx"


def _psx_key(rank: int) -> str:
    return f"\0psx:{rank}"


def describe_processes(children: int, first_udp: str, rpc_process: bool) -> list[str]:
    """``core.psx``'s description of rank 0, 1, ...: the supervisor, each worker
    (Kamailio's "udp receiver child=N sock=IP:PORT") and the RPC process."""
    out = ["main process - attendant"]
    out += [f"udp receiver child={i} sock={first_udp}" for i in range(children)]
    if rpc_process:
        out.append("ctl handler")
    return out


def publish(store: SharedStore, started: float, describe: Sequence[str]) -> None:
    """The supervisor, before forking: the start time and the process descriptions."""
    store.set(STARTED_KEY, int(started))
    store.set(_PSX_COUNT_KEY, len(describe))
    for rank, text in enumerate(describe):
        store.set(_psx_key(rank), text)


def address_reload(modules: Sequence[str]) -> Callable[[], object] | None:
    """permissions' reload hook when the cfg loads permissions."""
    if "permissions" not in modules:
        return None
    from kcc_runtime.modules.permissions import reload_addresses

    return reload_addresses


#: the environment of each worker process, built on first use (id(process) -> ...)
_ENVS: dict[int, tuple[Process, RpcEnv]] = {}


def env_for(proc: Process) -> RpcEnv:
    """The RPC environment of a worker (built once per process)."""
    cached = _ENVS.get(id(proc))
    if cached is not None and cached[0] is proc:
        return cached[1]
    from kcc_runtime import location as loc
    from kcc_runtime.rpc.server import pid_key

    store = proc.shared
    config = proc.config
    modules: tuple[str, ...] = tuple(config.modules) if config is not None else ()
    db_mode = proc.modparam_int("usrloc", "db_mode", 0)

    def location() -> loc.LocationStore | None:
        if "usrloc" not in modules:
            return None
        if proc.location is None:
            url = proc.modparams.get(("usrloc", "db_url"))
            proc.location = loc.store_for(
                db_mode,
                url if isinstance(url, str) and url else None,
                proc.modparam_int("usrloc", "timer_interval", 60),
            )
        return proc.location

    def processes() -> list[tuple[int, str]]:
        count = store.get(_PSX_COUNT_KEY)
        if not isinstance(count, int) or count <= 0:
            return [(os.getpid(), "main process - attendant")]
        out = []
        for rank in range(count):
            pid = store.get(pid_key(rank))
            text = store.get(_psx_key(rank))
            out.append((pid if isinstance(pid, int) else 0, str(text)))
        return out

    started = store.get(STARTED_KEY)
    env = RpcEnv(
        config=config,
        shared=store,
        started=float(started) if isinstance(started, int) and started > 0 else time.time(),
        processes=processes,
        location=location(),
        db_mode=db_mode,
        use_domain=bool(proc.modparam_int("usrloc", "use_domain", 0)),
        modules=modules,
        htables=proc.htables if "htable" in modules else None,
        pike=proc.pike if "pike" in modules else None,
        reload_addresses=address_reload(modules),
    )
    if len(_ENVS) > 16:  # tests make many processes; a worker has one
        _ENVS.clear()
    _ENVS[id(proc)] = (proc, env)
    return env
