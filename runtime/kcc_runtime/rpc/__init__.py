"""Kamailio's RPC control interface for the kcc proxy: ctl's binrpc (what
``kamcmd`` speaks) and jsonrpcs' JSON-RPC over a FIFO and a datagram socket, served
by one RPC process the supervisor starts (:mod:`kcc_runtime.rpc.server`).

- :mod:`~kcc_runtime.rpc.registry`: the reply values, faults and the command table;
- :mod:`~kcc_runtime.rpc.binrpc` and :mod:`~kcc_runtime.rpc.jsonrpc`: the codecs,
  sans-IO;
- :mod:`~kcc_runtime.rpc.commands`: the commands, with their help texts;
- :mod:`~kcc_runtime.rpc.stats`: the statistics catalog;
- :mod:`~kcc_runtime.rpc.server`: the process, its sockets and its loop.

This package imports nothing at import time, so the engine can use
:mod:`~kcc_runtime.rpc.stats` without pulling in the server.
"""
