"""Lazy SIP messages over the received bytes, and a splicing serializer.

A ``Request`` or ``Response`` is built by ``parser.parse_message`` from one buffer,
which finds only the start line, the end of the header section and the body. The header
lines are indexed when first needed and only as far as needed, like Kamailio's
``parse_headers(msg, flags, 0)``: reading the top Via (usually the first line) indexes one
line; reading another header, the lines up to it; ``names``, ``validate()`` or a missing
header index them all. Each line is indexed once: its canonical name (lower case, compact
form expanded, RFC 3261 §7.3.3) and four offsets (line start, value start, value end,
line end after the EOL; folded lines, §7.3.1, extend their header's value). When the
lines left are all plain (a token name, its colon, no fold, the message's EOL) they are
indexed in one pass (a regex ``findall`` and a ``split``: ~5.5 µs for a 12-line INVITE
where a Python loop per line takes ~9.5 µs); any other section is read line by line, which
is also what reports a malformed line. Values are parsed when read (``msg.vias``,
``msg.to``, ``msg.cseq``, ``msg.call_id``...) and cached. Single-valued headers read
their first occurrence, as Kamailio does; ``validate()`` rejects repeats.

Edits are recorded the way Kamailio records "lumps": each is a splice ``(start, end,
new bytes)`` on the original buffer. ``serialize()`` copies the untouched stretches of the
buffer around the splices, so every byte that was not edited (header names' case,
folding, odd LWS, the body) goes out exactly as it came in, and a message with no edits
is returned as is. Reads keep answering from the received message, as in Kamailio,
except the Request-URI, which reads back what ``set_uri`` wrote (Kamailio's ``$ru``).
Splices inside a region another edit deleted are dropped (an edit to the top Via after
``remove_top_via`` has nothing left to edit).

Content-Length is kept correct: ``set_body`` rewrites it, and a message received without
one (RFC 2543 style, RFC 4475 §3.4.1) gets one on output, since stream transports need it
(RFC 3261 §18.3). Trailing octets after the body of a datagram are never forwarded
(§18.3, RFC 4475 §3.1.1.8).
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterator, Sequence
from itertools import chain
from typing import Final, overload

from kcc_runtime.sip import abnf
from kcc_runtime.sip.errors import SipParseError
from kcc_runtime.sip.headers import (
    COMPACT,
    CSeq,
    NameAddr,
    Via,
    parse_cseq,
    parse_digits,
    parse_name_addr,
    parse_name_addr_list,
    parse_vias,
)
from kcc_runtime.sip.uri import SipUri, Uri, parse_uri

#: Headers a reply is built from (RFC 3261 §8.2.6.2, §18.2.2): a fault in one of them
#: means no reply can be sent.
REPLY_HEADERS: Final = (b"via", b"from", b"to", b"call-id", b"cseq")

_LWS: Final = b" \t\r\n"
_MAX_LEN: Final = 2**31 - 1


#: a header name at a line start directly followed by its colon (header-name = token,
#: §7.3.1), in the lowered header section from the LF before its first line
_LINE_NAME: Final = re.compile(rb"\n([" + abnf.TOKEN_CHARS + rb"]+):")

#: any whitespace or line break (a Request-URI may hold none)
_WHITESPACE: Final = re.compile(rb"[ \t\r\n]")


def canonical_name(name: str | bytes) -> bytes:
    """The key a header is indexed under: lower case, compact form expanded."""
    raw = (name.encode("utf-8") if isinstance(name, str) else name).strip(b" \t").lower()
    return COMPACT.get(raw, raw)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


#: the cached parsed lists :meth:`Message.shed` may let go, and how many values they
#: may hold in all before it does: a parsed Via keeps ~30 small objects, and tm reads
#: none of them again (a failure route that does parses them again)
_LIST_KEYS: Final = ("vias", "Route", "Record-Route", "Contact")
SHED_LIST_ITEMS: Final = 8
#: how many header lines a finished index may have before :meth:`Message.shed` packs
#: it (a plain call's requests have about a dozen: they stay lists)
PACK_INDEX_LINES: Final = 16


class PackedSpans(Sequence[tuple[int, int, int, int]]):
    """A finished header index's offsets, four C ints a line in one ``array``, read as
    the ``(line_start, value_start, value_end, line_end)`` tuples of the list it
    replaces (:meth:`Message.shed`). The list costs a tuple and up to four int
    objects a line: for a request with 199 Route lines that tm keeps for 32 s, ~1,000
    objects of 50 bytes in CPython's small-object arenas, which go back to the system
    only once empty; this costs one object whatever the count."""

    __slots__ = ("_offsets",)

    def __init__(self, spans: Sequence[tuple[int, int, int, int]]) -> None:
        self._offsets = array("i", chain.from_iterable(spans))

    def __len__(self) -> int:
        return len(self._offsets) >> 2

    @overload
    def __getitem__(self, i: int) -> tuple[int, int, int, int]: ...
    @overload
    def __getitem__(self, i: slice) -> list[tuple[int, int, int, int]]: ...
    def __getitem__(
        self, i: int | slice
    ) -> tuple[int, int, int, int] | list[tuple[int, int, int, int]]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self._offsets) >> 2
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("header line index out of range")
        o = self._offsets
        j = i << 2
        return o[j], o[j + 1], o[j + 2], o[j + 3]

    def __iter__(self) -> Iterator[tuple[int, int, int, int]]:
        o = self._offsets
        for j in range(0, len(o), 4):
            yield o[j], o[j + 1], o[j + 2], o[j + 3]


class Message:
    """What requests and responses share: the buffer, the header index, the edits.

    ``names[i]`` is the canonical name of header line ``i``; ``spans[i]`` is
    ``(line_start, value_start, value_end, line_end)`` in ``buf``: a list while lines
    are being indexed, a :class:`PackedSpans` once a long index is done and the message
    is kept (:meth:`shed`).
    """

    __slots__ = (
        "_cache",
        "_edits",
        "_names",
        "_scan",
        "_spans",
        "_unchecked",
        "body_end",
        "body_start",
        "buf",
        "eol",
        "has_content_length",
        "hdr_end",
        "hdr_start",
        "loose",
    )

    # Parameters are positional-or-keyword: the parser passes them positionally, which
    # halves the cost of building a message (~0.85 µs against ~1.3 µs by keyword).
    def __init__(  # noqa: PLR0917 -- positional on the parsing path, see above
        self,
        buf: bytes,
        eol: bytes,
        hdr_start: int,
        hdr_end: int,
        body_start: int,
        body_end: int,
        has_content_length: bool,
    ) -> None:
        self.buf = buf
        self.eol = eol
        self.hdr_start = hdr_start
        self.hdr_end = hdr_end
        self.body_start = body_start
        self.body_end = body_end
        self._names: list[bytes] = []
        self._spans: list[tuple[int, int, int, int]] | PackedSpans = []
        self._scan = hdr_start
        #: lines ``_scan_one`` indexed, whose names ``validate()`` still checks
        self._unchecked: list[int] = []
        self.has_content_length = has_content_length
        self._cache: dict[str, object] = {}
        self._edits: list[tuple[int, int, bytes]] = []
        #: the cfg does its own sanity checking (it loads sanity): like Kamailio's
        #: core, take any CSeq number and do not compare CSeq's method with the
        #: request's, leaving both to ``sanity_check`` (set by the engine)
        self.loose = False

    # ---- the header index -------------------------------------------------------

    def _scan_one(self) -> bool:
        """Index the next header (with its folded continuation lines, §7.3.1).

        The exact, line-by-line reading: ``_index_plain`` leaves to it every section
        it cannot take whole, so malformed lines are reported here.
        """
        pos = self._scan
        end = self.hdr_end
        if pos >= end:
            return False
        buf = self.buf
        nl = buf.find(b"\n", pos, end)
        if nl < 0:
            nl = end
        if buf[pos] in (0x20, 0x09):
            raise SipParseError(400, "Header section starts with a folded line", can_reply=False)
        colon = buf.find(b":", pos, nl)
        if colon < 0:
            raise SipParseError(400, "Header line without a colon", can_reply=False)
        line_end = nl + 1
        while line_end < end and buf[line_end] in (0x20, 0x09):
            nl = buf.find(b"\n", line_end, end)
            if nl < 0:
                nl = end
            line_end = nl + 1
        name = buf[pos:colon].lower()
        if name[-1:] in (b" ", b"\t"):
            name = name.rstrip(b" \t")
        spans = self._spans
        assert isinstance(spans, list)  # packed only when every line is indexed
        self._names.append(COMPACT.get(name, name))
        spans.append((pos, colon + 1, nl - 1 if buf[nl - 1] == 0x0D else nl, line_end))
        self._unchecked.append(len(self._names) - 1)
        self._scan = line_end
        return True

    def _index_plain(self, key: bytes | None = None) -> bool:
        """Index the remaining header lines, up to the first one named ``key`` (all of
        them for None), in one pass, if the remaining lines are all plain.

        Plain: each line is ``token ":" value`` ended by the message's EOL, with no
        fold and no other line break. One regex ``findall`` over the lowered section
        finds the names, one ``split`` the line lengths; the section is taken only
        when both agree on every line (same count, every LF in an EOL), so each line
        gets exactly the name and offsets ``_scan_one`` would give it, and its name is
        known to be a token. Returns False, indexing nothing, for any other section.
        """
        start = self._scan
        end = self.hdr_end
        buf = self.buf
        eol = self.eol
        # buf[start - 1] is the LF ending the start line or the last indexed line
        found = _LINE_NAME.findall(buf[start - 1 : end].lower())
        section = buf[start:end]
        lines = section.split(eol)
        n = len(found)
        if len(lines) != n + 1 or lines[-1]:
            return False
        if b"\r\n" in section if eol == b"\n" else section.count(b"\n") != n:
            return False  # a bare LF in a CRLF message, or a CR LF in an LF one
        names = found
        if min(map(len, found)) == 1:  # a compact form (RFC 3261 §7.3.3)
            names = [COMPACT.get(name, name) for name in found]
        if key in names:
            n = names.index(key) + 1
        spans = self._spans
        assert isinstance(spans, list)  # packed only when every line is indexed
        k = len(eol)
        ls = start
        for line, name in zip(lines[:n], found, strict=False):
            le = ls + len(line) + k
            spans.append((ls, ls + len(name) + 1, le - k, le))
            ls = le
        self._names += names[:n]
        self._scan = ls
        return True

    def _complete(self) -> list[bytes]:
        """Index every header line; return the canonical names."""
        if self._scan < self.hdr_end and not self._index_plain():
            while self._scan_one():
                pass
        return self._names

    def _find(self, key: bytes) -> int:
        """Index of the first header line named ``key``, -1 when there is none.

        Lines are indexed up to ``key`` only, so a malformed line further down fails
        only the reads that reach it: the first read takes the first line alone (it is
        usually the top Via), later ones the next lines in one pass when they are
        plain, else line by line.
        """
        names = self._names
        if key in names:
            return names.index(key)
        if not names and self._scan_one() and names[0] == key:
            return 0
        if self._scan < self.hdr_end and self._index_plain(key):
            return len(names) - 1 if names[-1] == key else -1
        while self._scan_one():
            if names[-1] == key:
                return len(names) - 1
        return -1

    def _lines(self, key: bytes) -> list[int]:
        """Index of every header line named ``key``, in order."""
        names = self._names if self._scan >= self.hdr_end else self._complete()
        out: list[int] = []
        i = -1
        for _ in range(names.count(key)):
            i = names.index(key, i + 1)
            out.append(i)
        return out

    @property
    def names(self) -> list[bytes]:
        """Canonical name of every header line, in order (lower case, compact expanded)."""
        return self._complete()

    @property
    def spans(self) -> Sequence[tuple[int, int, int, int]]:
        """``(line_start, value_start, value_end, line_end)`` of every header line."""
        self._complete()
        return self._spans

    # ---- generic header access -------------------------------------------------

    def _fail(self, name: bytes, reason: str) -> SipParseError:
        return SipParseError(
            400,
            reason,
            can_reply=isinstance(self, Request) and name not in REPLY_HEADERS,
        )

    def _raw_value(self, i: int) -> bytes:
        _, vs, ve, _ = self._spans[i]
        raw = self.buf[vs:ve].strip(_LWS)
        if b"\n" in raw:
            raw = abnf.FOLD_RE.sub(b" ", raw)
        return raw

    def header_bytes(self, name: str | bytes) -> bytes | None:
        """The first value of header ``name`` (folds replaced by SP), or None."""
        i = self._find(canonical_name(name))
        return None if i < 0 else self._raw_value(i)

    def header(self, name: str | bytes) -> str | None:
        """The first value of header ``name`` as text, or None."""
        raw = self.header_bytes(name)
        return None if raw is None else _text(raw)

    def header_values(self, name: str | bytes) -> list[str]:
        """Every line of header ``name``, in order (comma-joined values not split)."""
        return [_text(self._raw_value(i)) for i in self._lines(canonical_name(name))]

    def has_header(self, name: str | bytes) -> bool:
        """Whether at least one header line named ``name`` is present."""
        return self._find(canonical_name(name)) >= 0

    # ---- structured headers (parsed on first use, cached) ------------------------
    # Single-valued headers read their first line, as Kamailio does; ``validate()``
    # rejects repeats.

    @property
    def vias(self) -> list[Via]:
        """Every Via value, top first, over all Via lines (§20.42)."""
        cached = self._cache.get("vias")
        if cached is None:
            out: list[Via] = []
            spans = self._spans
            for i in self._lines(b"via"):
                _, vs, ve, _ = spans[i]
                try:
                    out.extend(parse_vias(self.buf, vs, ve))
                except SipParseError as exc:
                    raise self._fail(b"via", exc.reason) from None
            self._cache["vias"] = cached = out
            if out:
                self._cache.setdefault("via", out[0])
        return cached  # type: ignore[return-value]

    @property
    def via(self) -> Via | None:
        """The top Via, or None when there is none."""
        cached = self._cache.get("via")
        if cached is None:
            every = self._cache.get("vias")
            if every is not None:  # already parsed with the others
                return every[0] if every else None  # type: ignore[index]
            i = self._find(b"via")
            if i < 0:
                return None
            _, vs, ve, _ = self._spans[i]
            try:
                cached = parse_vias(self.buf, vs, ve)[0]
            except SipParseError as exc:
                raise self._fail(b"via", exc.reason) from None
            self._cache["via"] = cached
        return cached  # type: ignore[return-value]

    def _name_addr(self, key: bytes, what: str) -> NameAddr | None:
        cached = self._cache.get(what)
        if cached is None:
            i = self._find(key)
            if i < 0:
                return None
            _, vs, ve, _ = self._spans[i]
            try:
                cached = parse_name_addr(self.buf, vs, ve, what)
            except SipParseError as exc:
                raise self._fail(key, exc.reason) from None
            self._cache[what] = cached
        return cached  # type: ignore[return-value]

    @property
    def from_(self) -> NameAddr | None:
        """The From header (§20.20), None when absent."""
        return self._name_addr(b"from", "From")

    @property
    def to(self) -> NameAddr | None:
        """The To header (§20.39), None when absent."""
        return self._name_addr(b"to", "To")

    def _name_addr_list(self, key: bytes, what: str) -> list[NameAddr]:
        cached = self._cache.get(what)
        if cached is None:
            out: list[NameAddr] = []
            spans = self._spans
            for i in self._lines(key):
                _, vs, ve, _ = spans[i]
                try:
                    out.extend(parse_name_addr_list(self.buf, vs, ve, what))
                except SipParseError as exc:
                    raise self._fail(key, exc.reason) from None
            self._cache[what] = cached = out
        return cached  # type: ignore[return-value]

    @property
    def contact_star(self) -> bool:
        """Whether the Contact is the ``*`` wildcard (§10.2.2, REGISTER removing all)."""
        i = self._find(b"contact")
        return i >= 0 and self._raw_value(i) == b"*"

    @property
    def contacts(self) -> list[NameAddr]:
        """Every Contact value in order (§20.10); empty for ``*`` or no Contact."""
        cached = self._cache.get("Contact")
        if cached is not None:
            return cached  # type: ignore[return-value]
        if self.contact_star:
            return []
        return self._name_addr_list(b"contact", "Contact")

    @property
    def routes(self) -> list[NameAddr]:
        """Every Route value in order (§20.34)."""
        return self._name_addr_list(b"route", "Route")

    @property
    def record_routes(self) -> list[NameAddr]:
        """Every Record-Route value in order (§20.30)."""
        return self._name_addr_list(b"record-route", "Record-Route")

    def shed(self, keep: int = SHED_LIST_ITEMS, pack: int = PACK_INDEX_LINES) -> int:
        """Forget the parsed Via, Route, Record-Route and Contact lists when they hold
        more than ``keep`` values in all (they are parsed again if asked for); how
        many values were let go. A message a transaction keeps for seconds keeps its
        bytes, not a parse tree some 25 times their size: 60 KB of comma-joined
        Contacts parse into 7,500 objects, 1.6 MB of small allocations that, kept by
        a few hundred transactions at once, leave the allocator's arenas fragmented
        after they are freed.

        For the same reason a finished header index of more than ``pack`` lines is
        packed: its offsets into one :class:`PackedSpans`, each repeated name into
        one object (a line's name is a new bytes object when indexed)."""
        spans = self._spans
        if isinstance(spans, list) and self._scan >= self.hdr_end and len(spans) > pack:
            self._spans = PackedSpans(spans)
            first: dict[bytes, bytes] = {}
            self._names = [first.setdefault(name, name) for name in self._names]
        cache = self._cache
        held = sum(len(value) for key in _LIST_KEYS if isinstance(value := cache.get(key), list))
        if held <= keep:
            return 0
        for key in _LIST_KEYS:
            cache.pop(key, None)
        return held

    @property
    def call_id(self) -> str | None:
        """The Call-ID (§20.8), None when absent."""
        cached = self._cache.get("call_id")
        if cached is None:
            i = self._find(b"call-id")
            if i < 0:
                return None
            raw = self._raw_value(i)
            if abnf.CALLID_RE.match(raw) is None:
                raise self._fail(b"call-id", "Bad Call-ID header")
            self._cache["call_id"] = cached = _text(raw)
        return cached  # type: ignore[return-value]

    @property
    def cseq(self) -> CSeq | None:
        """The CSeq (§20.16), None when absent."""
        cached = self._cache.get("cseq")
        if cached is None:
            i = self._find(b"cseq")
            if i < 0:
                return None
            try:
                cached = parse_cseq(self._raw_value(i), loose=self.loose)
            except SipParseError as exc:
                raise self._fail(b"cseq", exc.reason) from None
            self._cache["cseq"] = cached
        return cached  # type: ignore[return-value]

    @property
    def max_forwards(self) -> int | None:
        """Max-Forwards (§20.22), None when absent.

        A value above 255 is kept as sent; deciding what it means is routing policy
        (RFC 4475 §3.1.2.4 lets an element treat it as absent).
        """
        cached = self._cache.get("max_forwards")
        if cached is None:
            i = self._find(b"max-forwards")
            if i < 0:
                return None
            cached = parse_digits(self._raw_value(i), _MAX_LEN)
            if cached is None:
                raise self._fail(b"max-forwards", "Bad Max-Forwards header")
            self._cache["max_forwards"] = cached
        return cached  # type: ignore[return-value]

    @property
    def content_length(self) -> int | None:
        """The Content-Length header's value, None when absent (checked at parse)."""
        raw = self.header_bytes(b"content-length")
        return None if raw is None else parse_digits(raw, _MAX_LEN)

    @property
    def content_type(self) -> str | None:
        """The Content-Type header (§20.15) as text, None when absent."""
        return self.header("content-type")

    @property
    def body(self) -> bytes:
        """The body: exactly Content-Length octets (§18.3)."""
        return self.buf[self.body_start : self.body_end]

    def check_reply_headers(self) -> None:
        """Raise ``SipParseError`` (``can_reply=False``) unless a reply can be built.

        A reply copies Via, From, Call-ID and CSeq and adds a tag to To (RFC 3261
        §8.2.6.2) and is routed by the top Via (§18.2.2): each must be present, once
        (Via may repeat), and parse, URIs of From and To included.
        """
        names = self.names
        present = set(names)
        for key in REPLY_HEADERS:
            if key not in present:
                raise SipParseError(400, f"Missing {key.decode().title()} header", can_reply=False)
        if len(present) < len(names):  # some header repeats
            for key in REPLY_HEADERS[1:]:
                if names.count(key) > 1:
                    raise SipParseError(
                        400, f"Multiple {key.decode().title()} headers", can_reply=False
                    )
        _ = self.vias, self.call_id, self.cseq
        for name in (self.from_, self.to):
            if name is not None:
                try:
                    _ = name.uri
                except SipParseError as exc:
                    raise SipParseError(400, exc.reason, can_reply=False) from None

    def reply_possible(self) -> bool:
        """Whether a reply to this message can be built (a request with usable
        Via, From, To, Call-ID and CSeq; responses are never answered, §18.1.2)."""
        if not isinstance(self, Request):
            return False
        try:
            self.check_reply_headers()
        except SipParseError:
            return False
        return True

    def _check_start_line(self) -> None:
        """Start-line checks that need the headers (overridden by ``Request``)."""

    def validate(self) -> None:
        """Check the headers a proxy relies on; raise ``SipParseError`` on the first fault.

        Faults that prevent a reply are looked for first, so ``can_reply`` is exact:
        header names must be tokens; then ``check_reply_headers``; then the Request-URI
        and CSeq's method matching the request's (§8.1.1.5); then Max-Forwards and
        Content-Type at most once, Max-Forwards digits (it may be absent: RFC 2543
        senders omit it, RFC 4475 §3.4.1), Contact, Route and Record-Route parse, and a
        Date is in GMT (§20.17). This is the parse-level part of Kamailio's
        ``sanity_check``.
        """
        names = self._complete()
        buf = self.buf
        spans = self._spans
        # lines indexed by ``_index_plain`` have token names already
        for i in self._unchecked:
            ls, vs, _, _ = spans[i]
            if abnf.HEADER_NAME_RE.match(buf[ls:vs].rstrip(b": \t")) is None:
                raise self._fail(names[i], "Bad header name")
        self.check_reply_headers()
        self._check_start_line()
        for key in (b"max-forwards", b"content-type"):
            if names.count(key) > 1:
                raise self._fail(key, f"Multiple {key.decode().title()} headers")
        _ = self.max_forwards, self.contacts
        if b"route" in names:
            _ = self.routes
        if b"record-route" in names:
            _ = self.record_routes
        if b"date" in names:
            date = self._raw_value(names.index(b"date"))
            if abnf.RFC1123_DATE_RE.match(date) is None:
                raise self._fail(b"date", "Bad Date header")

    # ---- edits ------------------------------------------------------------------

    def _line(self, name: str | bytes, value: str | bytes) -> bytes:
        n = name.encode("ascii") if isinstance(name, str) else name
        v = value.encode("utf-8") if isinstance(value, str) else value
        if b"\r" in v or b"\n" in v or b"\r" in n or b"\n" in n or b":" in n:
            raise ValueError("a header name or value may not contain CR, LF (or ':' in a name)")
        return n + b": " + v + self.eol

    def _splice(self, start: int, end: int, data: bytes) -> None:
        self._edits.append((start, end, data))

    def insert_header_first(self, name: str | bytes, value: str | bytes) -> None:
        """Insert a header line before every other header line."""
        self._splice(self.hdr_start, self.hdr_start, self._line(name, value))

    def add_header(self, name: str | bytes, value: str | bytes) -> None:
        """Append a header line after the last one (Kamailio ``append_hf``)."""
        self._splice(self.hdr_end, self.hdr_end, self._line(name, value))

    def remove_header(self, name: str | bytes) -> int:
        """Remove every line of header ``name``; return how many were removed."""
        key = canonical_name(name)
        lines = self._lines(key)
        for i in lines:
            ls, _, _, le = self._spans[i]
            self._splice(ls, le, b"")
        return len(lines)

    def insert_via(self, value: str | bytes) -> None:
        """Put a new top Via (§16.6 step 8) on its own line above the existing ones."""
        i = self._find(b"via")
        at = self._spans[i][0] if i >= 0 else self.hdr_start
        self._splice(at, at, self._line(b"Via", value))

    def remove_top_via(self) -> bool:
        """Remove the top Via value (a response going upstream, §16.7 step 3).

        Only the first via-parm is cut when its line holds several, so the rest of the
        line is forwarded unchanged. Returns False when there was no Via.
        """
        i = self._find(b"via")
        if i < 0:
            return False
        ls, vs, ve, le = self._spans[i]
        try:
            line_vias = parse_vias(self.buf, vs, ve)
        except SipParseError as exc:
            raise self._fail(b"via", exc.reason) from None
        if len(line_vias) == 1:
            self._splice(ls, le, b"")
        else:
            self._splice(line_vias[0].start, line_vias[1].start, b"")
        return True

    def set_via_received(self, received: str | None = None, rport: int | None = None) -> None:
        """Set ``received`` and/or fill ``rport`` on the top Via (§18.2.1, RFC 3581 §4).

        An existing parameter is rewritten in place; a missing ``received`` is added
        after the last parameter. ``rport`` is only filled in when the client asked for
        it (the parameter is present), as RFC 3581 §4 requires.
        """
        via = self.via
        if via is None:
            return
        names = [k for k, _ in via.params]
        adds = b""
        if received is not None:
            new = b"received=" + received.encode("ascii")
            if "received" in names:
                s, e = via.param_spans[names.index("received")]
                self._splice(s, e, new)
            else:
                adds += b";" + new
        if rport is not None and "rport" in names:
            s, e = via.param_spans[names.index("rport")]
            self._splice(s, e, b"rport=%d" % rport)
        if adds:
            self._splice(via.end, via.end, adds)

    def add_record_route(self, value: str | bytes) -> None:
        """Insert a Record-Route value above any existing ones (§16.6 step 4)."""
        i = self._find(b"record-route")
        at = self._spans[i][0] if i >= 0 else self.hdr_start
        self._splice(at, at, self._line(b"Record-Route", value))

    def set_body(self, body: bytes) -> None:
        """Replace the body and rewrite Content-Length to match."""
        self._splice(self.body_start, self.body_end, body)
        self._cache["new_length"] = len(body)

    def serialize(self) -> bytes:
        """The message to send: the original bytes with the recorded splices applied."""
        edits = self._edits
        length = self._cache.get("new_length")
        if length is not None or not self.has_content_length:
            edits = [*edits, *self._length_edits(length)]
        buf = self.buf
        if not edits:
            return buf if self.body_end == len(buf) else buf[: self.body_end]
        if len(edits) == 1:  # the common case: one Via added or removed
            start, end, data = edits[0]
            return b"".join((buf[:start], data, buf[end : self.body_end]))
        ordered = sorted(enumerate(edits), key=lambda e: (e[1][0], e[1][1] > e[1][0], e[0]))
        out: list[bytes] = []
        cur = 0
        for _, (start, end, data) in ordered:
            if start < cur and (end <= cur or start == end):
                continue  # inside a region another edit removed
            out.append(buf[cur : max(start, cur)])
            out.append(data)
            cur = end
        out.append(buf[cur : self.body_end])
        return b"".join(out)

    def _length_edits(self, length: object) -> list[tuple[int, int, bytes]]:
        n = self.body_end - self.body_start if not isinstance(length, int) else length
        value = b"%d" % n
        if not self.has_content_length:
            return [(self.hdr_end, self.hdr_end, b"Content-Length: " + value + self.eol)]
        out: list[tuple[int, int, bytes]] = []
        first = True
        for i in self._lines(b"content-length"):
            ls, vs, ve, le = self._spans[i]
            if first:
                raw = self.buf[vs:ve]
                lead = len(raw) - len(raw.lstrip(_LWS))
                trail = len(raw) - len(raw.rstrip(_LWS))
                out.append((vs + lead, ve - trail, value))
                first = False
            else:
                out.append((ls, le, b""))
        return out


class Request(Message):
    """A SIP request (§7.1): method, Request-URI and the lazy header view."""

    __slots__ = ("method", "uri_end", "uri_start", "version")

    def __init__(  # noqa: PLR0917 -- built positionally by the parser (see Message)
        self,
        buf: bytes,
        eol: bytes,
        hdr_start: int,
        hdr_end: int,
        body_start: int,
        body_end: int,
        has_content_length: bool,
        method: str,
        uri_start: int,
        uri_end: int,
        version: str,
    ) -> None:
        super().__init__(buf, eol, hdr_start, hdr_end, body_start, body_end, has_content_length)
        self.method = method
        self.uri_start = uri_start
        self.uri_end = uri_end
        self.version = version

    @property
    def uri_raw(self) -> bytes:
        """The Request-URI's bytes (the new one after ``set_uri``)."""
        new = self._cache.get("new_uri")
        if isinstance(new, bytes):
            return new
        return self.buf[self.uri_start : self.uri_end]

    @property
    def uri(self) -> Uri:
        """The parsed Request-URI (raises ``SipParseError`` 400 when malformed).

        RFC 3261 §19.1.1 (table of URI components): a Request-URI carries no header
        fields, so escaped headers in one are rejected (RFC 4475 §3.1.2.11).
        """
        raw = self.uri_raw
        cached = self._cache.get("uri")
        if cached is None or self._cache.get("uri_raw") != raw:
            cached = parse_uri(raw)
            if isinstance(cached, SipUri) and cached.headers:
                raise SipParseError(400, "Bad Request-URI (header fields)")
            self._cache["uri"] = cached
            self._cache["uri_raw"] = raw
        return cached  # type: ignore[return-value]

    def set_uri(self, uri: str | bytes) -> None:
        """Replace the Request-URI (Kamailio's ``$ru`` assignment, ``rewriteuri``)."""
        raw = uri.encode("utf-8") if isinstance(uri, str) else uri
        if not raw or _WHITESPACE.search(raw) is not None:
            raise ValueError("a Request-URI may not be empty or contain whitespace")
        self._edits = [e for e in self._edits if e[0] != self.uri_start]
        self._splice(self.uri_start, self.uri_end, raw)
        self._cache["new_uri"] = raw

    def _check_start_line(self) -> None:
        """The Request-URI parses and CSeq's method is the request's (§8.1.1.5)."""
        _ = self.uri
        cseq = self.cseq
        if cseq is not None and cseq.method != self.method and not self.loose:
            raise SipParseError(400, "CSeq method does not match request method")


class Response(Message):
    """A SIP response (§7.2): status code, reason phrase and the lazy header view."""

    __slots__ = ("reason", "status", "version")

    def __init__(  # noqa: PLR0917 -- built positionally by the parser (see Message)
        self,
        buf: bytes,
        eol: bytes,
        hdr_start: int,
        hdr_end: int,
        body_start: int,
        body_end: int,
        has_content_length: bool,
        status: int,
        reason: str,
        version: str,
    ) -> None:
        super().__init__(buf, eol, hdr_start, hdr_end, body_start, body_end, has_content_length)
        self.status = status
        self.reason = reason
        self.version = version
