"""The soak's short version (issue 9): fuzzed datagrams mixed with valid calls through
the stateful balancer built by kcc, with two workers.

``examples/stateful_rr.cfg`` runs as the proxy kcc builds (``children=2``) in front of
two SIPp UAS backends, each behind a shield (``bench/sipp_shield.py``) that keeps from
it the datagrams of 20,490 bytes or more, which overflow a buffer of SIPp's and kill
it (the proxy still relays them; the shield answers them 513). While a SIPp UAC
places ``CALLS`` valid calls (INVITE, 100/180/200, ACK and BYE loose-routed through
the proxy; SIPp's retransmissions on, as a real caller's, a source port per call so
both workers take calls), ``bench/sipfuzz.py`` sends ``DATAGRAMS`` fuzzed datagrams
(the torture corpus and a SIPp call's messages, with byte flips, truncation,
duplicated headers, bad Content-Length, deep comma lists, NULs, bad UTF-8, oversize
datagrams) from four sockets to the proxy's port. Checked afterwards:

- no worker restarted: the supervisor's children have the same PIDs, and the log has
  no ``restarting it`` line;
- every valid call succeeded;
- the proxy still serves: an OPTIONS gets its answer (the cfg's 404);
- the log shows no internal error: no ``error while processing`` (the engine's
  catch-all), no ``engine failed`` (the transport's), no traceback.

The long version, with memory before and after, is ``bench/soak.py`` (a million
datagrams). Kamailio is not run here: the fuzzed input is the kcc runtime's concern.
"""

from __future__ import annotations

import re
import signal
import threading
from pathlib import Path

import pytest

from bench.sipfuzz import SendStats, send_fuzz
from bench.sipp_shield import shield_argv
from tests.integration.conftest import (
    START_TIMEOUT,
    Service,
    Services,
    SipProbe,
    Uas,
    free_udp_ports,
    needs_sipp,
    read_stat,
    run_sipp_client,
    sipp_base,
    spawn,
    start_proxy,
    start_uas,
    udp_bound,
    wait_until,
)

pytestmark = [needs_sipp]

DATAGRAMS = 30_000
FUZZ_RATE = 3_000  # datagrams/s: 10 s of fuzzing
CALLS = 300
CALL_RATE = 30  # calls/s: 10 s of calls, alongside
INTERNAL_ERROR = re.compile(r"error while processing|engine failed|engine timer failed|Traceback")
RESTART = re.compile(r"worker \d+ \(pid \d+\) .*restarting it")


def worker_pids(root: int) -> set[int]:
    """The PIDs of ``root``'s children (the supervisor's workers), from ``/proc``."""
    found: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        if int(text[text.rfind(")") + 2 :].split()[1]) == root:
            found.add(int(stat.parent.name))
    return found


def backends_state(uases: list[Uas], shields: list[Service]) -> str:
    """Whether each SIPp backend and its shield still run, the backend's last output
    and errors: the fuzz reaches the backends through the proxy, and a backend that
    stalls or dies fails the calls routed to it (what a failure here must tell apart
    from the proxy)."""
    parts = []
    for uas, shield in zip(uases, shields, strict=True):
        errors = uas.calls_log.with_suffix(".errors")
        tail = errors.read_text(errors="replace")[-1500:] if errors.exists() else "(none)"
        parts.append(
            f"UAS {uas.port}: {'alive' if uas.service.alive() else 'EXITED'}, "
            f"its {shield.name}: {'alive' if shield.alive() else 'EXITED'}\n"
            f"{uas.service.log_tail(15)}\nerrors: {tail}"
        )
    return "\n".join(parts)


def start_shield(services: Services, listen: int, uas: Uas) -> Service:
    """A shield on 127.0.0.1:``listen`` in front of ``uas`` (``bench/sipp_shield.py``)."""
    log = services.workdir / f"shield-{listen}.out"
    argv = shield_argv(listen, uas.port)
    service = services.add(
        spawn(f"shield:{listen}", argv, log, cwd=services.workdir, stop_signal=signal.SIGUSR1)
    )
    if not wait_until(lambda: udp_bound(listen) or not service.alive(), START_TIMEOUT):
        pytest.fail(f"the shield on port {listen} did not bind:\n{service.log_tail()}")
    if not service.alive():
        pytest.fail(f"the shield on port {listen} exited:\n{service.log_tail()}")
    return service


def test_fuzzed_datagrams_with_valid_calls(services: Services) -> None:
    ports = free_udp_ports(4)
    shield_ports, uas_ports = ports[:2], ports[2:]
    uases = [start_uas(services, port, "uas_rr.xml") for port in uas_ports]
    shields = [
        start_shield(services, listen, uas) for listen, uas in zip(shield_ports, uases, strict=True)
    ]
    proxy = start_proxy(services, "kcc", "stateful_rr", shield_ports, children=2)
    workers = worker_pids(proxy.service.pid)
    assert len(workers) == 2, f"expected two workers: {workers}\n{proxy.service.log_tail()}"

    sent: list[SendStats] = []
    fuzzer = threading.Thread(
        target=lambda: sent.append(
            send_fuzz(proxy.port, DATAGRAMS, seed=4475, rate=FUZZ_RATE, timeout=120)
        )
    )
    (local,) = free_udp_ports(1)
    stat = services.workdir / f"uac-{local}.csv"
    argv = [*sipp_base("uac_rr.xml", local), "-m", str(CALLS), "-r", str(CALL_RATE)]
    argv += ["-t", "un", "-max_socket", "512", "-recv_timeout", "20000", "-timeout", "90s"]
    argv += ["-trace_stat", "-stf", str(stat), f"127.0.0.1:{proxy.port}"]
    fuzzer.start()
    try:
        done = run_sipp_client(services, argv, 120, f"SIPp UAC did not finish {CALLS} calls")
    finally:
        fuzzer.join(timeout=180)
    assert not fuzzer.is_alive(), "the fuzzer did not finish"
    stats = read_stat(stat) if stat.exists() else {}

    assert sent and sent[0].sent == DATAGRAMS, f"fuzzer: {sent}"
    assert stats.get("SuccessfulCall(C)") == str(CALLS), (
        f"valid calls: {stats.get('SuccessfulCall(C)')} of {CALLS} succeeded, "
        f"{stats.get('FailedCall(C)')} failed\n{done.stderr.decode(errors='replace')[-2000:]}"
        f"\n{proxy.service.log_tail()}\n{backends_state(uases, shields)}"
    )
    probe = SipProbe()
    try:
        reply = probe.ask("OPTIONS", f"sip:ping@127.0.0.1:{proxy.port}", proxy.port, 5.0)
    finally:
        probe.close()
    assert reply is not None and reply.status == 404, f"no answer afterwards: {reply}"
    assert worker_pids(proxy.service.pid) == workers, proxy.service.log_tail()
    log = proxy.service.log.read_text(encoding="utf-8", errors="replace").splitlines()
    assert not [line for line in log if RESTART.search(line)], proxy.service.log_tail()
    errors = [line for line in log if INTERNAL_ERROR.search(line)]
    assert not errors, "internal errors:\n" + "\n".join(errors[:20])
