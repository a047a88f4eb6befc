"""The statistics catalog: the names Kamailio 5.6.3 lists for ``kamcmd
stats.get_statistics all`` (measured on a cfg with tm, tmx, sl, usrloc and
registrar), per module, and how ``tm.stats``/``sl.stats`` are derived from them.

kcc counts (in :mod:`kcc_runtime.engine`) ``core:rcv_requests``,
``core:rcv_requests_<method>``, ``core:rcv_replies``, ``core:rcv_replies_<N>xx``,
``core:fwd_requests``, ``core:fwd_replies``, ``core:drop_replies``,
``core:err_requests`` and sl's reply counters; the other names are listed (so
``all`` has Kamailio's names) and stay 0. Kamailio's ``shmem:``, ``dns:`` and
``tcp:`` groups are left out: kcc has no such memory pool, resolver cache or TCP
statistics to report.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from kcc_runtime.shared import Counters

__all__ = ["sl_reply_counter", "sl_stats", "statistic_names", "tm_stats"]

_METHODS: Final = ("bye", "cancel", "invite", "message", "prack", "refer", "reg", "update")
_REQUEST_METHODS: Final = (
    "ack", "bye", "cancel", "info", "invite", "message", "notify", "options",
    "prack", "publish", "refer", "register", "subscribe", "update",
)  # fmt: skip

CORE: Final = (
    "bad_URIs_rcvd", "bad_msg_hdr", "drop_replies", "drop_requests", "err_replies",
    "err_requests", "fwd_replies", "fwd_requests", "rcv_replies", "rcv_replies_18x",
    *(f"rcv_replies_{c}xx{s}" for c in range(1, 7) for s in ("", *(f"_{m}" for m in _METHODS))),
    "rcv_replies_401", "rcv_replies_404", "rcv_replies_407", "rcv_replies_480",
    "rcv_replies_486", "rcv_requests", *(f"rcv_requests_{m}" for m in _REQUEST_METHODS),
    "unsupported_methods",
)  # fmt: skip
#: sl's reply codes with a counter of their own (the others count in Nxx)
SL_CODES: Final = (200, 202, 300, 301, 302, 400, 401, 403, 404, 407, 408, 483, 500)
SL: Final = (
    "1xx_replies", *(f"{c}_replies" for c in SL_CODES), "2xx_replies", "3xx_replies",
    "4xx_replies", "5xx_replies", "6xx_replies", "failures", "received_ACKs",
    "sent_err_replies", "sent_replies", "xxx_replies",
)  # fmt: skip
TMX: Final = (
    "2xx_transactions", "3xx_transactions", "4xx_transactions", "5xx_transactions",
    "6xx_transactions", "UAC_transactions", "UAS_transactions", "active_transactions",
    "inuse_transactions", "rpl_absorbed", "rpl_generated", "rpl_received", "rpl_relayed",
    "rpl_sent",
)  # fmt: skip
REGISTRAR: Final = (
    "accepted_regs", "default_expire", "default_expires_range", "expires_range",
    "max_contacts", "max_expires", "rejected_regs",
)  # fmt: skip


def statistic_names(modules: Iterable[str], extra: Iterable[str] = ()) -> list[str]:
    """Every counter name for a cfg loading ``modules`` (``group:name``), then the
    ``extra`` ones (counters' ``script_counter`` declarations)."""
    loaded = set(modules)
    names = [f"core:{n}" for n in CORE]
    if "sl" in loaded:
        names += [f"sl:{n}" for n in SL]
    if "tmx" in loaded:
        names += [f"tmx:{n}" for n in TMX]
    if "registrar" in loaded:
        names += [f"registrar:{n}" for n in REGISTRAR]
    names += [n for n in extra if n not in names]
    return names


def sl_reply_counter(code: int) -> str:
    """The sl counter a reply with ``code`` adds to (its own, else its class)."""
    if code in SL_CODES:
        return f"sl:{code}_replies"
    klass = code // 100
    return f"sl:{klass}xx_replies" if 1 <= klass <= 6 else "sl:xxx_replies"


def sl_stats(counters: Counters) -> list[tuple[str, int]]:
    """``sl.stats``: the per-code and per-class counters (measured order: 200 ..
    xxx, 1xx left out)."""
    out: list[tuple[str, int]] = []
    for name in (
        "200", "202", "2xx", "300", "301", "302", "3xx", "400", "401", "403", "404",
        "407", "408", "483", "4xx", "500", "5xx", "6xx", "xxx",
    ):  # fmt: skip
        out.append((name, counters.get(f"sl:{name}_replies")))
    return out


def tm_stats(counters: Counters) -> list[tuple[str, int]]:
    """``tm.stats`` (measured field order), from tmx's counters."""
    get = counters.get
    return [
        ("current", get("tmx:active_transactions")),
        ("waiting", 0),
        ("total", get("tmx:UAS_transactions") + get("tmx:UAC_transactions")),
        ("total_local", get("tmx:UAC_transactions")),
        ("rpl_received", get("tmx:rpl_received")),
        ("rpl_generated", get("tmx:rpl_generated")),
        ("rpl_sent", get("tmx:rpl_sent")),
        ("6xx", get("tmx:6xx_transactions")),
        ("5xx", get("tmx:5xx_transactions")),
        ("4xx", get("tmx:4xx_transactions")),
        ("3xx", get("tmx:3xx_transactions")),
        ("2xx", get("tmx:2xx_transactions")),
        ("created", get("tmx:UAS_transactions") + get("tmx:UAC_transactions")),
        ("freed", 0),
        ("delayed_free", 0),
    ]
