"""sipvicious ``svmap`` against the proxy (issue 5 acceptance): the scanner's OPTIONS
gets an answer, so the proxy is listed as a SIP device, and the proxy keeps serving.

svmap (PyPI ``sipvicious``) sends an OPTIONS from its own socket and prints a table
row ``| 127.0.0.1:PORT | <User Agent> |`` for every address that answered; the user
agent comes from the reply's ``Server:`` header (Kamailio's reads ``kamailio (5.6.x
(x86_64/linux))``), so only the row itself is compared across implementations.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.integration.conftest import (
    IMPLS,
    Services,
    SipProbe,
    isolated_env,
    needs_sipp,
    sipvicious_svmap,
    start_proxy,
)

pytestmark = [needs_sipp, pytest.mark.parametrize("impl", IMPLS)]


def test_svmap_lists_the_proxy_and_it_keeps_serving(
    impl: str, services: Services, probe: SipProbe
) -> None:
    proxy = start_proxy(services, impl, "stateless_rr_var", (5081, 5082), children=1)
    scan = subprocess.run(
        [str(sipvicious_svmap()), "-b", "127.0.0.1", "127.0.0.1", "-p", str(proxy.port)],
        capture_output=True,
        text=True,
        env=isolated_env(services.workdir),
        cwd=services.workdir,
        timeout=120,
        check=False,
    )
    assert scan.returncode == 0, scan.stdout + scan.stderr
    rows = re.findall(rf"^\| 127\.0\.0\.1:{proxy.port} +\| (.+?) +\|$", scan.stdout, re.M)
    assert len(rows) == 1, scan.stdout
    assert proxy.service.alive(), proxy.service.log_tail()
    reply = probe.ask("OPTIONS", f"sip:bob@127.0.0.1:{proxy.port}", proxy.port, timeout=5.0)
    assert reply is not None, "the proxy stopped answering after the scan"
    assert (reply.status, reply.reason) == (404, "Not Found")
