# -*- test-case-name: sudp_test.udp.test_sendstate -*-
"""
What the send path reads and writes of a session: the contract between
L{sudp.udp.session} and the C data path's send half (C{sudp/_speedups.c},
C{DataPath.send} and C{DataPath.sendMany}).

For one application message the C code reads, of the session,
L{SEND_SESSION_FIELDS}; of the session's receive state
(L{sudp.udp.receivestate}) its C{state}, C{probe}, C{peerAddr} and
C{stats}; and of the session's C{sendEpoch} (a
L{sudp.udp.receivestate.KeyEpoch}) L{SEND_EPOCH_FIELDS}. It seals the
message with the epoch's native C{sealer} only in the common case: the
session is open, no new address is being validated, the message fits,
the sealer is the built-in native cipher, and the packet neither reaches
the count that starts a rekey nor comes near the key's usage limit. Then
it writes exactly what L{sudp.udp.session.Session.sendMessage} would: the
epoch's C{sendSeq} (advanced before the packet is queued, so a sequence
number, and so a nonce, is never used twice under a key), the session's
C{lastSend}, C{stats["sent"]}, and one C{(packet, peerAddr)} pair on the
engine's outbox. Every other case goes to C{Session.sendMessage}, the
reference, so the protocol's logic has one home.

The C module exports the names it uses under the same two names, and
sudp_test.udp.test_sendstate holds both sides to them.
"""

SEND_SESSION_FIELDS = (
    "receiveState", "maxMessageSize", "sendEpoch", "rekeyAfterMessages", "rejectAfterMessages",
    "remoteIndex", "lastSend",
)
SEND_EPOCH_FIELDS = ("sealer", "sendSeq", "number")
