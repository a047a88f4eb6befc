"""Timer values (RFC 3261 §17, table 4 of appendix A) and Kamailio tm's settings.

``TimerConfig()`` holds Kamailio 5.6 tm's defaults (README.tm §3); ``TimerConfig.rfc3261()``
the RFC's. Every timer the layer arms is computed here, so the two readings sit side by
side:

========  ===========================  =============================================
timer     RFC 3261                     Kamailio tm (the default here)
========  ===========================  =============================================
A         T1, doubling, no cap         ``retr_timer1`` doubling, capped at
          (§17.1.1.2)                  ``retr_timer2`` like E (measured on 5.6: an
                                       INVITE to a silent peer goes out at 0, 0.5,
                                       1.5, 3.5, 7.5, 11.5, 15.5 ... s)
B         64*T1, Calling only          ``fr_timer`` until the first 1xx, then
                                       ``fr_inv_timer`` (restarted on 1xx, see
                                       ``restart_fr_on_each_reply``)
C (§16.6) > 3 min after a 1xx          ``fr_inv_timer`` (120 s)
E, G      T1 doubling, capped at T2    same (``retr_timer1`` / ``retr_timer2``)
F         64*T1                        ``fr_timer`` (30 s)
H         64*T1                        ``fr_timer`` ("no final reply ... or ACK for
                                       a negative INVITE reply")
D         32 s UDP, 0 reliable         ``wt_timer`` (5 s): the cell waits once final
I, K      T4 UDP, 0 reliable           ``wt_timer``
J         64*T1 UDP, 0 reliable        ``wt_timer``
L, M      64*T1 (RFC 6026)             ``wt_timer``
========  ===========================  =============================================

``max_inv_lifetime`` / ``max_noninv_lifetime`` bound the wait for a final response from
the creation of the transaction whatever fr timer restarts (README.tm §3.3, §3.4): the
client timeout fires at ``min(fr deadline, created + max lifetime)``. ``noisy_ctimer``
changes no timing (it decides whether the TU answers 408), so it lives in the TU; the
``Timeout`` event says whether any response had been received, which is what it needs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """Timer settings in seconds; None means "the RFC 3261 value" where allowed."""

    #: T1, RTT estimate (Kamailio ``retr_timer1``, 500 ms)
    t1: float = 0.5
    #: T2, the cap of non-INVITE and response retransmission intervals (``retr_timer2``)
    t2: float = 4.0
    #: T4, how long a message may live in the network (RFC Timers I and K)
    t4: float = 5.0
    #: client final-response timeout (``fr_timer``); None: Timer B/F/H = 64*T1
    fr_timer: float | None = 30.0
    #: INVITE client timeout once a 1xx arrived (``fr_inv_timer``); None: Timer C, 180 s
    fr_inv_timer: float | None = 120.0
    #: wait after completion (``wt_timer``); None: the RFC's D, I, J, K, L, M
    wt_timer: float | None = 5.0
    #: ``restart_fr_on_each_reply``: restart fr_inv_timer on every 1xx, else only on the
    #: first and on increasing codes >= 180
    restart_fr_on_each_reply: bool = True
    #: ``max_inv_lifetime`` / ``max_noninv_lifetime``; None: no bound
    max_inv_lifetime: float | None = 180.0
    max_noninv_lifetime: float | None = 32.0
    #: whether INVITE retransmissions (Timer A) are capped at T2 as Kamailio does
    cap_invite_retransmit: bool = True

    @classmethod
    def rfc3261(cls) -> TimerConfig:
        """The RFC's timers exactly (Timer A uncapped, 64*T1 timeouts, RFC waits)."""
        return cls(
            fr_timer=None,
            fr_inv_timer=None,
            wt_timer=None,
            max_inv_lifetime=None,
            max_noninv_lifetime=None,
            cap_invite_retransmit=False,
        )

    # ---- client ------------------------------------------------------------------

    def next_retransmit(self, interval: float, *, invite: bool) -> float:
        """The interval after ``interval`` for Timers A, E (and G: ``invite=False``)."""
        doubled = interval * 2
        if invite and not self.cap_invite_retransmit:
            return doubled
        return min(doubled, self.t2)

    def client_timeout(self, fr_timer: float | None) -> float:
        """Timer B / F: the wait for a response after sending (``fr_timer``)."""
        return fr_timer if fr_timer is not None else 64 * self.t1

    def proceeding_timeout(self, fr_inv_timer: float | None) -> float:
        """The INVITE client's wait for a final response after a 1xx (Timer C)."""
        return fr_inv_timer if fr_inv_timer is not None else 180.0

    def max_lifetime(self, *, invite: bool) -> float | None:
        """``max_inv_lifetime`` / ``max_noninv_lifetime``."""
        return self.max_inv_lifetime if invite else self.max_noninv_lifetime

    def timer_d(self, *, reliable: bool) -> float:
        """Timer D: an INVITE client absorbing final-response retransmissions."""
        if self.wt_timer is not None:
            return self.wt_timer
        return 0.0 if reliable else 32.0

    def timer_k(self, *, reliable: bool) -> float:
        """Timer K: a non-INVITE client absorbing response retransmissions."""
        if self.wt_timer is not None:
            return self.wt_timer
        return 0.0 if reliable else self.t4

    def timer_m(self) -> float:
        """Timer M (RFC 6026): an INVITE client relaying 2xx retransmissions."""
        return self.wt_timer if self.wt_timer is not None else 64 * self.t1

    # ---- server ------------------------------------------------------------------

    def timer_h(self) -> float:
        """Timer H: an INVITE server waiting for the ACK of its 3xx-6xx."""
        return self.fr_timer if self.fr_timer is not None else 64 * self.t1

    def timer_i(self, *, reliable: bool) -> float:
        """Timer I: an INVITE server absorbing ACK retransmissions."""
        if self.wt_timer is not None:
            return self.wt_timer
        return 0.0 if reliable else self.t4

    def timer_j(self, *, reliable: bool) -> float:
        """Timer J: a non-INVITE server absorbing request retransmissions."""
        if self.wt_timer is not None:
            return self.wt_timer
        return 0.0 if reliable else 64 * self.t1

    def timer_l(self) -> float:
        """Timer L (RFC 6026): an INVITE server absorbing INVITEs after its 2xx."""
        return self.wt_timer if self.wt_timer is not None else 64 * self.t1
