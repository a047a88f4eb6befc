"""kcc: compile Kamailio routing configs into checked, typed Python SIP proxies.

The pipeline (see :mod:`kcc.pipeline` and docs/architecture.md)::

    preprocess -> parse -> check -> (codegen -> format, in later versions)
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
