"""Stateless balancer bench (issue 5): ``bench/proxy_bench.py`` on ``stateless_rr_var`` only.

    unshare -n sh -c 'ip link set lo up && exec .venv/bin/python bench/stateless_bench.py'

Kept so the command issue 5 and the README give still works. It accepts the options
it always had (``--cfg``, ``--children``, ``--rate``, ``--seconds``, ``--rounds``,
``--steps``, ``--step-seconds``) plus ``--quick``, and prints the same table as the
stateless part of the proxy bench: the kcc proxy's CPU time per call and the highest
rate held with < 1 % failed calls, side by side with Kamailio 5.6 on
``examples/stateless_rr_var.cfg``, with the ratio. How it measures is described in
``proxy_bench``'s docstring.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from proxy_bench import exit_on_sigterm
from proxy_bench import main as proxy_main


def main(argv: Sequence[str] | None = None) -> int:
    rest = list(sys.argv[1:] if argv is None else argv)
    return proxy_main(["--benches", "stateless_rr_var", *rest])


if __name__ == "__main__":
    exit_on_sigterm()
    raise SystemExit(main())
