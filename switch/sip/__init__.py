"""Sans-IO SIP core: bytes in, objects out; no sockets, no clock, no other project imports.

>>> from switch.sip import parse_message, Headers
>>> Headers([("i", "x")]).items()
[('Call-ID', 'x')]
"""

from switch.sip.digest import (
    Challenge,
    DigestError,
    Verdict,
    authorization,
    parse_auth_params,
    verify,
)
from switch.sip.headers import Headers, header_param, split_values, tag, uri_of
from switch.sip.limits import ParseLimits
from switch.sip.message import (
    REASONS,
    Message,
    Request,
    Response,
    SipParseError,
    cseq,
    make_response,
    parse_message,
    serialize,
    top_via,
    via_branch,
)
from switch.sip.nonces import NonceCounts, NonceFactory
from switch.sip.sdp import (
    SdpError,
    SessionDescription,
    first_common_codec,
    parse_sdp,
    rewrite_for_relay,
    serialize_sdp,
)
from switch.sip.stream import StreamParser
from switch.sip.transaction import (
    ClientTransaction,
    Deliver,
    Output,
    Send,
    ServerTransaction,
    Terminated,
    TimedOut,
    TimerConfig,
    Transaction,
    TransactionError,
    TransactionTable,
    TransportError,
    client_key,
    server_key,
)
from switch.sip.uri import SipUri, UriError, is_request_uri, parse_uri

__all__ = [
    "REASONS",
    "Challenge",
    "ClientTransaction",
    "Deliver",
    "DigestError",
    "Headers",
    "Message",
    "NonceCounts",
    "NonceFactory",
    "Output",
    "ParseLimits",
    "Request",
    "Response",
    "SdpError",
    "Send",
    "ServerTransaction",
    "SessionDescription",
    "SipParseError",
    "SipUri",
    "StreamParser",
    "Terminated",
    "TimedOut",
    "TimerConfig",
    "Transaction",
    "TransactionError",
    "TransactionTable",
    "TransportError",
    "UriError",
    "Verdict",
    "authorization",
    "client_key",
    "cseq",
    "first_common_codec",
    "header_param",
    "is_request_uri",
    "make_response",
    "parse_auth_params",
    "parse_message",
    "parse_sdp",
    "parse_uri",
    "rewrite_for_relay",
    "serialize",
    "serialize_sdp",
    "server_key",
    "split_values",
    "tag",
    "top_via",
    "uri_of",
    "verify",
    "via_branch",
]
