"""Sans-IO SIP core: bytes in, objects out; no sockets, no clock, no other project imports.

>>> from switch.sip import parse_message, Headers
>>> Headers([("i", "x")]).items()
[('Call-ID', 'x')]
"""

from switch.sip.headers import Headers, header_param, split_values, tag
from switch.sip.message import (
    REASONS,
    Message,
    Request,
    Response,
    SipParseError,
    StreamParser,
    cseq,
    make_response,
    parse_message,
    serialize,
    top_via,
    via_branch,
)
from switch.sip.sdp import (
    SdpError,
    SessionDescription,
    first_common_codec,
    parse_sdp,
    rewrite_for_relay,
    serialize_sdp,
)
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

__all__ = [
    "REASONS",
    "ClientTransaction",
    "Deliver",
    "Headers",
    "Message",
    "Output",
    "Request",
    "Response",
    "SdpError",
    "Send",
    "ServerTransaction",
    "SessionDescription",
    "SipParseError",
    "StreamParser",
    "Terminated",
    "TimedOut",
    "TimerConfig",
    "Transaction",
    "TransactionError",
    "TransactionTable",
    "TransportError",
    "client_key",
    "cseq",
    "first_common_codec",
    "header_param",
    "make_response",
    "parse_message",
    "parse_sdp",
    "rewrite_for_relay",
    "serialize",
    "serialize_sdp",
    "server_key",
    "split_values",
    "tag",
    "top_via",
    "via_branch",
]
