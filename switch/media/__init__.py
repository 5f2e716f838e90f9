"""The media relay: RTP parsing and the RTP payload encryption of issue 11 (sans-IO parts), and
the relay process driven over rtpengine's ng control protocol (``python -m switch.media run``)."""

from switch.media.bencode import BencodeError, BValue
from switch.media.control import MediaControl
from switch.media.crypto import Mode, PayloadCipher, check_key
from switch.media.ng import (
    ENCRYPTION_OPTION,
    NgClient,
    NgCodec,
    NgError,
    NgMessage,
    NgProtocolError,
    NgTimeoutError,
    decode_message,
    encode_message,
)
from switch.media.pool import RelayAddress, RelayPool, RelayState
from switch.media.ports import PortAllocator, PortsExhausted
from switch.media.relay import Relay, RelayError
from switch.media.rtp import IndexEstimator, RtpError, RtpHeader, is_rtcp, parse_header, scan
from switch.media.workers import Workers, split_port_range, start_workers

__all__ = [
    "ENCRYPTION_OPTION",
    "BValue",
    "BencodeError",
    "IndexEstimator",
    "MediaControl",
    "Mode",
    "NgClient",
    "NgCodec",
    "NgError",
    "NgMessage",
    "NgProtocolError",
    "NgTimeoutError",
    "PayloadCipher",
    "PortAllocator",
    "PortsExhausted",
    "Relay",
    "RelayAddress",
    "RelayError",
    "RelayPool",
    "RelayState",
    "RtpError",
    "RtpHeader",
    "Workers",
    "check_key",
    "decode_message",
    "encode_message",
    "is_rtcp",
    "parse_header",
    "scan",
    "split_port_range",
    "start_workers",
]
