"""The uplink's exception tree: everything uplink/ raises derives from UplinkError."""

from core.errors import MeterGatewayError


class UplinkError(MeterGatewayError):
    """Base of every error raised by the uplink package."""


class BadMessage(UplinkError):
    """A message from the wire is malformed: not CBOR, wrong tag, wrong shape, too large."""


class BadSignature(UplinkError):
    """A COSE_Sign1 message whose signature does not verify against the expected key."""


class SigningKeyFileError(UplinkError):
    """A signing key file is missing, unreadable, of the wrong type, or would be overwritten."""


class RecordError(UplinkError):
    """A record cannot be encoded for the wire (e.g. a NaN value), naming the record."""
