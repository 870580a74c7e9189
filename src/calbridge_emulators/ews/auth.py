"""Sign-in as IIS does it in front of EWS: Basic, and NTLM (connection-based).

NTLM is a real handshake: the client's NEGOTIATE (type 1) is answered with a 401 carrying a
CHALLENGE (type 2) with a fresh server challenge; the client's AUTHENTICATE (type 3) is checked
by recomputing its NTLMv2 proof from the account's password (NTOWFv2, HMAC-MD5 over the server
challenge and the client's blob). As on IIS, a connection that completed the handshake stays
signed in: later requests on it need no header. Connections are told apart by the client's
address and port.
"""

from __future__ import annotations

import base64
import hmac
import os
import struct
import threading
from dataclasses import dataclass

from spnego._ntlm_raw.crypto import hmac_md5, ntowfv1, ntowfv2

from .store import Account, Organisation

NTLM_SIGNATURE = b"NTLMSSP\x00"
# NEGOTIATE_UNICODE | REQUEST_TARGET | NEGOTIATE_NTLM | ALWAYS_SIGN | TARGET_TYPE_DOMAIN |
# NEGOTIATE_EXTENDED_SESSIONSECURITY | NEGOTIATE_TARGET_INFO | NEGOTIATE_VERSION | 128 | 56
CHALLENGE_FLAGS = 0x00000001 | 0x00000004 | 0x00000200 | 0x00008000 | 0x00010000
CHALLENGE_FLAGS |= 0x00080000 | 0x00800000 | 0x02000000 | 0x20000000 | 0x80000000


class AuthFailed(Exception):
    """401: ``challenge`` is the ``WWW-Authenticate`` value(s) to send back."""

    def __init__(self, challenge: list[str]) -> None:
        super().__init__("unauthorized")
        self.challenge = challenge


@dataclass
class _Pending:
    challenge: bytes


class Authenticator:
    def __init__(self, org: Organisation, realm: str = "mail.harbour.example") -> None:
        self.org = org
        self.realm = realm
        self.lock = threading.Lock()
        self.pending: dict[tuple[str, int], _Pending] = {}
        self.signed_in: dict[tuple[str, int], str] = {}
        self.ntlm_handshakes = 0

    def offers(self) -> list[str]:
        return ["NTLM", "Negotiate", f'Basic realm="{self.realm}"']

    def authenticate(self, header: str, connection: tuple[str, int]) -> Account:
        """The account a request acts as, or :class:`AuthFailed`."""
        scheme, _, value = header.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "basic":
            return self._basic(value.strip())
        if scheme in ("ntlm", "negotiate") and value:
            return self._ntlm(value.strip(), connection)
        with self.lock:
            username = self.signed_in.get(connection)
        if username is not None and not header:
            account = self.org.account(username)
            if account is not None:
                return account
        raise AuthFailed(self.offers())

    def forget(self, connection: tuple[str, int]) -> None:
        with self.lock:
            self.signed_in.pop(connection, None)
            self.pending.pop(connection, None)

    # ------------------------------------------------------------ Basic
    def _basic(self, value: str) -> Account:
        try:
            user, _, password = base64.b64decode(value).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            raise AuthFailed(self.offers()) from None
        account = self.org.account(user)
        if account is None or not hmac.compare_digest(account.password, password):
            raise AuthFailed(self.offers())
        return account

    # ------------------------------------------------------------ NTLM
    def _ntlm(self, value: str, connection: tuple[str, int]) -> Account:
        try:
            message = base64.b64decode(value)
        except ValueError:
            raise AuthFailed(self.offers()) from None
        if not message.startswith(NTLM_SIGNATURE) or len(message) < 12:
            raise AuthFailed(self.offers())
        kind = struct.unpack("<I", message[8:12])[0]
        if kind == 1:
            challenge = os.urandom(8)
            with self.lock:
                self.pending[connection] = _Pending(challenge)
            token = base64.b64encode(self._challenge_message(challenge)).decode()
            raise AuthFailed([f"NTLM {token}"])
        if kind == 3:
            with self.lock:
                pending = self.pending.pop(connection, None)
            if pending is None:
                raise AuthFailed(self.offers())
            account = self._verify(message, pending.challenge)
            with self.lock:
                self.signed_in[connection] = account.username
                self.ntlm_handshakes += 1
            return account
        raise AuthFailed(self.offers())

    def _challenge_message(self, challenge: bytes) -> bytes:
        target = "HARBOUR".encode("utf-16-le")
        # AV pairs: MsvAvNbDomainName, MsvAvNbComputerName, MsvAvEOL
        computer = "EXCH01".encode("utf-16-le")
        info = (
            struct.pack("<HH", 2, len(target))
            + target
            + struct.pack("<HH", 1, len(computer))
            + computer
            + struct.pack("<HH", 0, 0)
        )
        header_len = 56
        target_offset = header_len
        info_offset = target_offset + len(target)
        version = struct.pack("<BBHBBBB", 10, 0, 17763, 0, 0, 0, 15)
        return (
            NTLM_SIGNATURE
            + struct.pack("<I", 2)
            + struct.pack("<HHI", len(target), len(target), target_offset)
            + struct.pack("<I", CHALLENGE_FLAGS)
            + challenge
            + b"\x00" * 8
            + struct.pack("<HHI", len(info), len(info), info_offset)
            + version
            + target
            + info
        )

    def _verify(self, message: bytes, challenge: bytes) -> Account:
        def field(offset: int) -> bytes:
            length, _max, start = struct.unpack("<HHI", message[offset : offset + 8])
            return message[start : start + length]

        try:
            nt_response = field(20)
            domain = field(28).decode("utf-16-le")
            user = field(36).decode("utf-16-le")
        except (struct.error, UnicodeDecodeError):
            raise AuthFailed(self.offers()) from None
        account = self.org.account(user)
        if account is None or len(nt_response) <= 24:  # NTLMv1 is refused, as on a hardened IIS
            raise AuthFailed(self.offers())
        proof, blob = nt_response[:16], nt_response[16:]
        key = ntowfv2(user, ntowfv1(account.password), domain)
        expected = hmac_md5(key, challenge + blob)
        if not hmac.compare_digest(proof, expected):
            raise AuthFailed(self.offers())
        return account
