"""RFC 3261 §25 grammar pieces as compiled ``bytes`` regexes (h11 ``_abnf.py`` style).

Each pattern sits under the ABNF it implements. The parser works on raw bytes, so
every pattern is a ``bytes`` pattern. Where the RFC says LWS (``[*WSP CRLF] 1*WSP``)
the patterns accept ``[ \\t\\r\\n]``: header boundaries are found before any value is
read, and a line break inside a header value is always a fold (§7.3.1), so accepting
CR/LF there is exactly LWS and lets value offsets map 1:1 onto the original buffer
(which the splicing serializer needs).

Deliberate liberalities, each one a robustness rule from RFC 4475 or RFC 5118:

- a display name of tokens may touch the ``<`` (RFC 4475 §3.1.1.6, an acknowledged
  ABNF bug);
- Via ``received`` may hold an IPv6 address with or without brackets (RFC 5118 §4.5);
- an IPv6 reference is any run of hex digits, ``:`` and ``.`` in brackets, so the
  three-colon form RFC 3261's ABNF allows is accepted (RFC 5118 §4.10).
"""

from __future__ import annotations

import re
from typing import Final

# LWS  =  [*WSP CRLF] 1*WSP ; linear whitespace  (unfolded already at boundaries)
LWS: Final = rb"[ \t\r\n]*"

# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" )
TOKEN_CHARS: Final = rb"A-Za-z0-9\-.!%*_+`'~"
TOKEN: Final = rb"[" + TOKEN_CHARS + rb"]+"
TOKEN_RE: Final = re.compile(TOKEN + rb"\Z")

# SIP-Version    =  "SIP" "/" 1*DIGIT "." 1*DIGIT
# Request-Line   =  Method SP Request-URI SP SIP-Version CRLF
# Method         =  INVITEm / ... / extension-method ; extension-method = token
REQUEST_LINE: Final = re.compile(
    rb"([" + TOKEN_CHARS + rb"]+) ([^ \t\r\n]+) ([Ss][Ii][Pp]/([0-9]+)\.([0-9]+))\Z"
)

# Status-Line     =  SIP-Version SP Status-Code SP Reason-Phrase CRLF
# Status-Code     =  ... / extension-code ;  extension-code  =  3DIGIT
# Reason-Phrase   =  *(reserved / unreserved / escaped / UTF8-NONASCII / UTF8-CONT / SP / HTAB)
STATUS_LINE: Final = re.compile(
    rb"([Ss][Ii][Pp]/([0-9]+)\.([0-9]+)) ([0-9]+) ([^\r\n\x00-\x08\x0a-\x1f\x7f]*)\Z"
)

# message-header  =  header-name HCOLON header-value CRLF ; header-name = token
HEADER_NAME_RE: Final = re.compile(TOKEN + rb"\Z")

# quoted-string  =  SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE
# qdtext         =  LWS / %x21 / %x23-5B / %x5D-7E / UTF8-NONASCII
# quoted-pair    =  "\" (%x00-09 / %x0B-0C / %x0E-7F)
QUOTED_STRING: Final = (
    rb'"(?:[^"\\\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\\[\x00-\x09\x0b\x0c\x0e-\x7f])*"'
)
QUOTED_PAIR_RE: Final = re.compile(rb"\\([\x00-\x09\x0b\x0c\x0e-\x7f])")

# display-name   =  *(token LWS)/ quoted-string   (token form may touch "<": RFC 4475 §3.1.1.6)
DISPLAY_TOKENS_RE: Final = re.compile(
    rb"[ \t\r\n]*(" + TOKEN + rb"(?:[ \t\r\n]+" + TOKEN + rb")*)?[ \t\r\n]*\Z"
)
QUOTED_DISPLAY_RE: Final = re.compile(rb"[ \t\r\n]*(" + QUOTED_STRING + rb")[ \t\r\n]*<")

# generic-param  =  token [ EQUAL gen-value ]
# gen-value      =  token / host / quoted-string
# EQUAL = SWS "=" SWS ; SEMI = SWS ";" SWS  (host widened by ":[]" for IPv6, RFC 5118 §4.5)
GENERIC_PARAM: Final = re.compile(
    rb"[ \t\r\n]*;[ \t\r\n]*("
    + TOKEN
    + rb")(?:[ \t\r\n]*=[ \t\r\n]*(["
    + TOKEN_CHARS
    + rb":\[\]]+|"
    + QUOTED_STRING
    + rb"))?"
)

# via-parm          =  sent-protocol LWS sent-by *( SEMI via-params )
# sent-protocol     =  protocol-name SLASH protocol-version SLASH transport
# protocol-name     =  "SIP" / token ; protocol-version = token
# transport         =  "UDP" / "TCP" / "TLS" / "SCTP" / other-transport (token)
# sent-by           =  host [ COLON port ]
# SLASH = SWS "/" SWS ; COLON = SWS ":" SWS
VIA_PARM: Final = re.compile(
    rb"[ \t\r\n]*("
    + TOKEN
    + rb")[ \t\r\n]*/[ \t\r\n]*("
    + TOKEN
    + rb")[ \t\r\n]*/[ \t\r\n]*("
    + TOKEN
    + rb")[ \t\r\n]+(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._]+)(?:[ \t\r\n]*:[ \t\r\n]*([0-9]+))?"
)

# The same, for the shape nearly every Via has ("SIP/2.0", a transport, a host, an
# optional port, params without LWS or quotes): one match per value, ending at the end
# of the header value or at the comma before the next value (group 5).
VIA_SIMPLE: Final = re.compile(
    rb"[ \t]*SIP/2\.0/([A-Za-z]+) (\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._]+)(?::([0-9]{1,5}))?((?:;["
    + TOKEN_CHARS
    + rb"]+(?:=["
    + TOKEN_CHARS
    + rb":\[\]]+)?)*)[ \t]*(?:(,)|\Z)"
)

# name-addr / addr-spec with *(SEMI generic-param), for the shape nearly every From, To,
# Contact and Route value has (token display name or none, no LWS around ";" and "=",
# parameter values tokens or hosts): one match, no loop. 1: display, 2: URI in "<>",
# 3: bare URI (addr-spec: no ";", ",", "?"), 4: the parameters.
NAME_ADDR_SIMPLE: Final = re.compile(
    rb"[ \t]*(?:(?:("
    + TOKEN
    + rb"(?:[ \t]+"
    + TOKEN
    + rb")*)[ \t]*)?<([^ \t\r\n<>:]*:[^ \t\r\n<>]*)>"
    + rb'|([^ \t\r\n<>";,?:]*:[^ \t\r\n<>";,?]*))((?:;['
    + TOKEN_CHARS
    + rb"]+(?:=["
    + TOKEN_CHARS
    + rb":\[\]]+)?)*)[ \t]*\Z"
)

# SIP-URI  =  "sip:" [ userinfo ] hostport uri-parameters [ headers ]   (SIPS-URI likewise)
# userinfo =  ( user / telephone-subscriber ) [ ":" password ] "@"
# user     =  1*( unreserved / escaped / user-unreserved )
# user-unreserved  =  "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"
# unreserved = alphanum / mark ; mark = "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")"
# escaped  =  "%" HEXDIG HEXDIG
ESCAPED: Final = rb"%[0-9A-Fa-f]{2}"
USER_RE: Final = re.compile(rb"(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|" + ESCAPED + rb")+\Z")
# password =  *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )
PASSWORD_RE: Final = re.compile(rb"(?:[A-Za-z0-9\-_.!~*'()&=+$,]|" + ESCAPED + rb")*\Z")
# hostport =  host [ ":" port ] ; host = hostname / IPv4address / IPv6reference
# hostname =  *( domainlabel "." ) toplabel [ "." ]  (labels of alphanum and "-")
# IPv6reference  =  "[" IPv6address "]" ; port = 1*DIGIT
HOSTPORT_RE: Final = re.compile(
    rb"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9\-_.]*[A-Za-z0-9])?\.?)(?::([0-9]{1,5}))?\Z"
)
# uri-parameter = transport-param / ... / other-param ; other-param = pname [ "=" pvalue ]
# pname = 1*paramchar ; pvalue = 1*paramchar
# paramchar = param-unreserved / unreserved / escaped
# param-unreserved = "[" / "]" / "/" / ":" / "&" / "+" / "$"
URI_PARAM_RE: Final = re.compile(
    rb"((?:[A-Za-z0-9\-_.!~*'()\[\]/:&+$]|"
    + ESCAPED
    + rb")+)(?:=((?:[A-Za-z0-9\-_.!~*'()\[\]/:&+$]|"
    + ESCAPED
    + rb")+))?\Z"
)
# headers = "?" header *( "&" header ) ; header = hname "=" hvalue
# hname = 1*( hnv-unreserved / unreserved / escaped ) ; hvalue = *( ... )
# hnv-unreserved  =  "[" / "]" / "/" / "?" / ":" / "+" / "$"
URI_HEADER_RE: Final = re.compile(
    rb"((?:[A-Za-z0-9\-_.!~*'()\[\]/?:+$]|"
    + ESCAPED
    + rb")+)=((?:[A-Za-z0-9\-_.!~*'()\[\]/?:+$]|"
    + ESCAPED
    + rb")*)\Z"
)
# absoluteURI = scheme ":" ( hier-part / opaque-part )
# scheme      = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
# (the RFC 2396 characters: reserved / unreserved / escaped; no whitespace, no "<>" or DQUOTE)
ABSOLUTE_URI_RE: Final = re.compile(
    rb"([A-Za-z][A-Za-z0-9+\-.]*):((?:[A-Za-z0-9\-_.!~*'();/?:@&=+$,\[\]]|" + ESCAPED + rb")+)\Z"
)
# telephone-subscriber (RFC 3966): global/local number with visual separators, then params
TEL_NUMBER_RE: Final = re.compile(rb"\+?[0-9A-Fa-f*#\-.()]+\Z")

# callid   =  word [ "@" word ]
# word     =  1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" /
#             "(" / ")" / "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" / "]" / "?" / "{" / "}" )
WORD: Final = rb"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+"
CALLID_RE: Final = re.compile(WORD + rb"(?:@" + WORD + rb")?\Z")

# CSeq  =  "CSeq" HCOLON 1*DIGIT LWS Method
CSEQ_RE: Final = re.compile(rb"([0-9]+)[ \t\r\n]+(" + TOKEN + rb")\Z")
#: what Kamailio's core takes as a CSeq: any number token, then a method
CSEQ_LOOSE_RE: Final = re.compile(rb"([^ \t\r\n]+)[ \t\r\n]+(" + TOKEN + rb")\Z")

# Max-Forwards  =  "Max-Forwards" HCOLON 1*DIGIT ; Content-Length = ... 1*DIGIT
# (read by ``headers.parse_digits`` with ``bytes.isdigit``, which is ASCII-only)

# rfc1123-date = wkday "," SP date1 SP time SP "GMT"   (RFC 3261 §20.17: only GMT)
RFC1123_DATE_RE: Final = re.compile(
    rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
    rb"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
    rb"[0-9]{2}:[0-9]{2}:[0-9]{2} GMT\Z"
)

# Folded continuation inside a header value (§7.3.1): replaced by a single SP when read.
FOLD_RE: Final = re.compile(rb"[ \t]*\r?\n[ \t]+")

# Characters that matter when splitting a comma-separated header list at top level.
LIST_SPECIALS_RE: Final = re.compile(rb'[",<>\\]')
