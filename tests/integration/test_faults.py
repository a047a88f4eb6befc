"""Faults against a running kcc proxy (issue 9, build item 3), the short versions.

The scenarios are the functions of ``bench/faults.py`` (whose long run prints the
figures); here they run with small counts and the results are checked. Each builds an
``examples/`` balancer with kcc (ports moved to free loopback ones, tm's
``fr_timer``/``fr_inv_timer`` at ``faults.FR_TIMER_MS``), runs SIPp or raw UDP/TCP
sockets against it and stops everything by PID. A worker that dies and is restarted
is covered at the unit level by ``tests/runtime/test_serve.py``
(``test_dead_worker_is_restarted_and_its_locks_released``, with a stand-in engine);
here it happens to a real proxy under SIPp load.

Timing is checked only where it is the behaviour (a 408 must wait for tm's timer, not
come at once) and with wide margins: the machine may be loaded.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import needs_sipp

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import faults

pytestmark = [needs_sipp]

FR_TIMER = faults.FR_TIMER_MS / 1000


@pytest.fixture
def lab() -> Iterator[faults.Lab]:
    with faults.lab() as group:
        yield group


# -- 1. a backend that dies mid-call -----------------------------------------------------


def test_backend_dead_after_180_gets_the_caller_a_408(lab: faults.Lab) -> None:
    """The backend rings, then dies: tm's fr_inv_timer ends the INVITE with a local
    408 to the caller, not before the timer, and the proxy still answers."""
    death = faults.backend_dies(lab, 180)
    assert death.invite_statuses[-2:] == (180, 408), death
    assert death.answered_after is not None, death
    assert FR_TIMER * 0.9 <= death.answered_after <= FR_TIMER + 10, death
    assert death.serving


def test_backend_dead_after_200_gets_the_bye_a_408(lab: faults.Lab) -> None:
    """The backend answers 200, then dies before the BYE: the BYE the caller sends
    through the proxy (loose-routed, relayed by tm) is retransmitted to the dead
    backend until fr_timer, then answered 408 by tm."""
    death = faults.backend_dies(lab, 200)
    assert death.invite_statuses[-1] == 200, death
    assert death.bye_status == 408, death
    assert death.answered_after is not None, death
    assert FR_TIMER * 0.9 <= death.answered_after <= FR_TIMER + 10, death
    assert death.serving


def test_calls_fail_over_from_a_dead_backend(lab: faults.Lab) -> None:
    """failover_rr with one backend dead: the round robin still sends it every other
    INVITE, fr_timer's 408 runs the failure_route, which relays to the live backend:
    every call succeeds."""
    calls = faults.failover_to_live_backend(lab, calls=10, rate=5)
    assert (calls.created, calls.successful, calls.failed) == (10, 10, 0), calls


# -- 2. a worker killed with SIGKILL -----------------------------------------------------


def test_killed_worker_is_restarted_and_calls_go_on(lab: faults.Lab) -> None:
    """SIGKILL to one of two workers a third of the way through a SIPp run (a socket
    per call, so both workers have calls). What may be lost is the dead worker's own
    work (docs/architecture.md, "Reply sockets"): the transactions it held (the
    backend's 200 comes back to its reply socket, which is gone), the datagrams queued
    on its share of the listening port, and a caller whose next request the flow hash
    sends to the other worker when the restarted one rebinds (no transaction there).
    With the UAS answering at once, that is a few calls at most: at least 80 % of the
    run must succeed. The supervisor restarts the worker (a new pid, logged) and a
    second run after the restart loses nothing."""
    kill = faults.worker_killed(lab, calls=90, rate=30, after_calls=30)
    assert len(kill.before_pids) == 2, kill
    assert kill.killed not in kill.after_pids and len(kill.after_pids) == 2, kill
    assert set(kill.before_pids) & set(kill.after_pids), kill  # the other one lived on
    assert kill.restart_logged and kill.restart_seconds is not None, kill
    assert kill.during.created == kill.during.asked, kill
    assert kill.during.successful >= 0.8 * kill.during.asked, kill
    assert (kill.after.successful, kill.after.failed) == (30, 0), kill
    assert not kill.traceback


# -- 3. messages above the maximum size --------------------------------------------------


def test_oversized_messages(lab: faults.Lab) -> None:
    """A 65,507-byte UDP datagram (the most IPv4 carries, below Kamailio's 65,535-byte
    BUF_SIZE, so Kamailio processes it too) is a valid OPTIONS and gets the cfg's 404;
    a TCP message past the framer's 65,535 bytes closes its connection, with a
    warning in the log. Afterwards the same worker answers on UDP and on TCP."""
    result = faults.oversize(lab)
    assert result.udp_status == 404, result
    assert result.tcp_closed and result.tcp_logged, result
    assert result.udp_serving and result.tcp_serving, result
    assert result.workers_same and not result.traceback, result


# -- 4. a full socket buffer -------------------------------------------------------------


def test_flood_overflows_the_socket_buffer_and_the_proxy_recovers(lab: faults.Lab) -> None:
    """50,000 OPTIONS from one socket into a 256 KiB receive buffer: the kernel drops
    most of them (counted in /proc/net/udp), the proxy answers what it reads, then
    answers a new OPTIONS within seconds, with the same workers and no traceback."""
    result = faults.flood(lab, 50_000, children=2)
    assert result.sent == 50_000, result
    assert result.kernel_drops > 0 and result.answered > 0, result
    assert result.recovered_after is not None and result.recovered_after < 30, result
    assert result.workers_same and not result.traceback, result


# -- 5. SIGTERM during load --------------------------------------------------------------


def test_sigterm_lets_ringing_calls_finish_and_refuses_new_ones(lab: faults.Lab) -> None:
    """Eight calls are ringing (spread over two workers) when the supervisor gets
    SIGTERM; their backends answer 200 a second later, well inside the drain: every
    caller gets its 200, a call started after the signal gets 503, nothing is
    canceled, and the workers exit by themselves (no SIGKILL), exit code 0."""
    drained = faults.sigterm_drain(lab, calls=8, answer_after=1.0, stop_timeout=8.0)
    assert drained.finals == (200,) * 8, drained
    assert drained.new_call == 503, drained
    assert drained.cancels == 0, drained
    assert drained.returncode == 0, drained.log_tail
    assert drained.sigkilled == 0, drained.log_tail
    assert not drained.traceback, drained.log_tail


def test_sigterm_answers_what_the_drain_deadline_leaves(lab: faults.Lab) -> None:
    """The same with backends that never answer and ``--stop-timeout 2``: at the
    drain's deadline (1.6 s) every caller gets a 503 and every backend branch a
    CANCEL; the workers exit before the supervisor's SIGKILL."""
    drained = faults.sigterm_drain(lab, calls=8, answer_after=None, stop_timeout=2.0)
    assert drained.finals == (503,) * 8, drained
    assert drained.new_call == 503, drained
    assert drained.cancels == 8, drained
    assert drained.returncode == 0, drained.log_tail
    assert drained.sigkilled == 0, drained.log_tail
    assert not drained.traceback, drained.log_tail


def test_sigterm_under_load_stops_cleanly(lab: faults.Lab) -> None:
    """SIGTERM to the supervisor in the middle of a SIPp run: it exits 0 well within
    ``--stop-timeout`` plus a margin, without killing a worker, no worker is left, no
    traceback is logged."""
    term = faults.sigterm_under_load(lab, calls=60, rate=30, stop_timeout=3.0)
    assert term.returncode == 0, term.log_tail
    assert term.exit_seconds is not None and term.exit_seconds < 3.0 + 10, term
    assert term.workers_left == (), term
    assert term.sigkilled == 0, term.log_tail
    assert not term.traceback, term.log_tail
    assert term.calls.successful > 0, term  # the proxy was serving when stopped


# -- 6. a slow backend holding many transactions ----------------------------------------


def test_slow_backend_holding_many_transactions(lab: faults.Lab) -> None:
    """400 INVITEs at 100/s to backends that answer 200 three seconds later: a few
    hundred transactions open at once over two workers; every caller gets its 200,
    the proxy answers every OPTIONS meanwhile, no worker dies."""
    held = faults.slow_backend(lab, calls=400, rate=100.0, hold=3.0)
    assert held.finals == {200: 400}, held
    assert held.most_open >= 200, held  # they really were open together
    assert held.options_sent >= 2, held
    assert held.options_answered == held.options_sent, held
    assert held.workers_same, held.log_tail
    assert not held.traceback, held.log_tail
