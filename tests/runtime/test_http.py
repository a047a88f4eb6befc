"""HTTP on SIP TCP sockets (``kcc_runtime.http``) and xhttp's reply, with the bytes
Kamailio 5.6.3 sends (measured with a raw TCP client against the stock cfg with
``-A WITH_JSONRPC``; see the module docstring)."""

from __future__ import annotations

import pytest
from kcc_runtime.http import HttpError, HttpFramer, build_reply, looks_like_http, parse_request

SERVER = b"Server: kamailio (5.6.3 (x86_64/linux))"


def test_looks_like_http() -> None:
    assert looks_like_http(b"POST /RPC HTTP/1.1\r\nHost: a\r\n") is True
    assert looks_like_http(b"\r\n\r\nget /x HTTP/1.0\r\n") is True
    assert looks_like_http(b"OPTIONS sip:a@b SIP/2.0\r\n") is False
    assert looks_like_http(b"SIP/2.0 200 OK\r\n") is False
    assert looks_like_http(b"GET /x HTT") is None
    assert looks_like_http(b"\r\n") is None
    assert looks_like_http(b"x" * 9000) is False


def test_framer_content_length_pipelined_and_split() -> None:
    framer = HttpFramer(accept_no_cl=True)
    first = b"POST /RPC HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}"
    second = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"
    data = first + second
    assert framer.feed(data[:10]) == []
    assert framer.feed(data[10:-3]) == [first]
    assert framer.feed(data[-3:]) == [second]


def test_framer_chunked_body_is_decoded() -> None:
    framer = HttpFramer()
    head = b"POST /RPC HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert framer.feed(head + b"5\r\nhel") == []
    assert framer.feed(b"lo\r\n3;x=1\r\nabc\r\n0\r\n\r\n") == [head + b"helloabc"]


def test_framer_refuses_what_cannot_be_framed() -> None:
    with pytest.raises(HttpError):
        HttpFramer(accept_no_cl=False).feed(b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
    framer = HttpFramer()
    with pytest.raises(HttpError):
        framer.feed(b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n")
    with pytest.raises(HttpError):
        framer.feed(b"GET / HTTP/1.1\r\n\r\n")  # broken for good
    with pytest.raises(HttpError):
        HttpFramer(max_message=100).feed(b"POST / HTTP/1.1\r\nContent-Length: 500\r\n\r\n")
    with pytest.raises(HttpError):
        HttpFramer().feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")


def test_parse_request_inserts_via_and_keeps_the_url() -> None:
    req = parse_request(
        b"get /x?a=1&b=2 HTTP/1.0\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}", ("127.0.0.1", 4321)
    )
    assert req is not None
    assert req.method == "get"
    assert req.version == "HTTP/1.0"
    assert req.buf[req.uri_start : req.uri_end] == b"/x?a=1&b=2"
    assert req.header("Via") == "SIP/2.0/TCP 127.0.0.1:4321"
    assert req.header("Host") == "h"
    assert req.body == b"{}"
    v6 = parse_request(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", ("::1", 5))
    assert v6 is not None and v6.header("Via") == "SIP/2.0/TCP [::1]:5"


def test_parse_request_refuses_a_request_without_headers() -> None:
    # measured: Kamailio's parser fails on it and closes the connection unanswered
    assert parse_request(b"GET /x HTTP/1.1\r\n\r\n", ("127.0.0.1", 1)) is None
    assert parse_request(b"INVITE sip:a SIP/2.0\r\nVia: x\r\n\r\n", ("127.0.0.1", 1)) is None


def test_reply_bytes_as_kamailio_sends_them() -> None:
    req = parse_request(b"POST /RPC HTTP/1.1\r\nHost: a\r\n\r\n", ("127.0.0.1", 36850))
    assert req is not None
    body = b'{\n\t"jsonrpc":\t"2.0",\n\t"result":\t"kamailio 5.6.3 (x86_64/linux) ",\n\t"id":\t1\n}'
    assert build_reply(req, 200, "OK", "application/json", body, server=SERVER) == (
        b"HTTP/1.1 200 OK\r\nSia: SIP/2.0/TCP 127.0.0.1:36850\r\n"
        b"Content-Type: application/json\r\nServer: kamailio (5.6.3 (x86_64/linux))\r\n"
        b"Content-Length: 76\r\n\r\n" + body
    )
    old = parse_request(b"GET /x HTTP/1.0\r\nHost: a\r\n\r\n", ("127.0.0.1", 41906))
    assert old is not None
    assert build_reply(old, 404, "Not Found", "", b"", server=None) == (
        b"HTTP/1.0 404 Not Found\r\nSia: SIP/2.0/TCP 127.0.0.1:41906\r\nContent-Length: 0\r\n\r\n"
    )


# -- the engine: event_route[xhttp:request] and xhttp_reply ----------------------------


def _proxy(route: object) -> object:
    from kcc_runtime.engine import Proxy, Socket
    from kcc_runtime.router import Config, Router

    config = Config(globals=(("tcp_accept_no_cl", "yes"),), modules=("sl", "xhttp"))
    router = Router(config=config, event={"xhttp:request": route})  # type: ignore[dict-item]
    return Proxy(router, [Socket("tcp", "127.0.0.1", 5060)])


def test_engine_runs_the_xhttp_route_and_replies_on_the_connection() -> None:
    from kcc_runtime.context import Context
    from kcc_runtime.engine import Outgoing, Proxy, Socket
    from kcc_runtime.modules.core import set_reply_close
    from kcc_runtime.modules.xhttp import xhttp_reply
    from kcc_runtime.pv import accessor

    hu = accessor("hu")
    seen: list[object] = []

    def route(ctx: Context) -> int:
        seen.append(hu.get(ctx))
        seen.append(ctx.msg.header("Host"))
        if ctx.msg.header("X-Close"):
            set_reply_close(ctx)
        assert xhttp_reply(ctx, 200, "OK", "text/html", f"Wrong URL {hu.get(ctx)}") == 1
        assert xhttp_reply(ctx, 200, "OK", "text/html", "twice") == -1
        return 1

    proxy = _proxy(route)
    assert isinstance(proxy, Proxy)
    assert proxy.http_enabled and proxy.http_accept_no_cl
    local = Socket("tcp", "127.0.0.1", 5060)
    outs = proxy.receive_http(
        b"GET /x?a=1 HTTP/1.1\r\nHost: h\r\n\r\n", ("127.0.0.1", 41892), local
    )
    body = b"Wrong URL /x?a=1"
    assert outs == [
        Outgoing(
            b"HTTP/1.1 200 OK\r\nSia: SIP/2.0/TCP 127.0.0.1:41892\r\nContent-Type: text/html\r\n"
            + SERVER
            + b"\r\nContent-Length: 16\r\n\r\n"
            + body,
            "tcp",
            ("127.0.0.1", 41892),
            local,
            False,
        )
    ]
    assert seen == ["/x?a=1", "h"]
    outs = proxy.receive_http(b"GET / HTTP/1.1\r\nX-Close: 1\r\n\r\n", ("127.0.0.1", 1), local)
    assert [o.close for o in outs] == [True]
    # a request line with no header: dropped, the connection closed, nothing run
    seen.clear()
    outs = proxy.receive_http(b"GET / HTTP/1.1\r\n\r\n", ("127.0.0.1", 1), local)
    assert outs == [Outgoing(b"", "tcp", ("127.0.0.1", 1), local, True)]
    assert seen == []


def test_xhttp_reply_outside_the_http_route_fails() -> None:
    from kcc_runtime.context import RequestContext
    from kcc_runtime.engine import Proxy
    from kcc_runtime.modules.xhttp import xhttp_reply

    proxy = _proxy(lambda ctx: 1)
    assert isinstance(proxy, Proxy)
    req = parse_request(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", ("127.0.0.1", 1))
    assert req is not None
    from kcc_runtime.context import Received

    ctx = RequestContext(proxy.process, req, Received("127.0.0.1", 1, "127.0.0.1", 5060, "tcp"))
    assert xhttp_reply(ctx, 200, "OK", "", "") == -1
