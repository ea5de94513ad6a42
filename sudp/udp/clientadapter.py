# -*- test-case-name: sudp_test.udp.test_client, sudp_test.udp.test_adapters -*-
"""
L{ClientAdapter}: the Twisted adapter of one sudp/1 client engine on its
own connected UDP port; it fires the connect Deferred when the session
opens (or fails) and reports the ICMP errors its socket sees.
"""

from sudp.addresses import displayAddress
from sudp.errors import HandshakeFailed
from sudp.udp.adapters import EngineAdapter


class ClientAdapter(EngineAdapter):
    """
    Drives a L{sudp.udp.client.ClientEngine} over a UDP port and fires
    C{ready} with the application protocol once the handshake is done.

    The socket is connect()ed to the server, so that the kernel reports an
    ICMP port unreachable (L{connectionRefused}) and drops datagrams from
    other sources; any that still come from elsewhere are dropped and counted.
    """

    def __init__(self, engine, factory, reactor, ready, onEnd):
        EngineAdapter.__init__(self, engine, factory, reactor)
        self.ready = ready
        self._onEnd = onEnd

    def datagramReceived(self, data, addr):
        self.datagramsReceived((data,), addr)

    def datagramsReceived(self, datagrams, addr):
        if addr != self.engine.serverAddr:
            self.engine.drops["wrong-source"] += len(datagrams)
            return
        self.feed(((datagrams, addr),))

    def start(self):
        self.engine.start(self.reactor.seconds())
        self.flush()

    def connectionRefused(self):
        """
        The connected socket saw an ICMP port unreachable from the server's
        address: the engine decides (L{ClientEngine.portUnreachable}).
        """
        self.engine.portUnreachable(self.reactor.seconds())
        self.flush()

    def _opened(self, session):
        ready, self.ready = self.ready, None
        protocol = self._bind(session)
        if protocol is None:
            self.engine.closeSession(session, self.reactor.seconds(), text="the application refused the session")
            if ready is not None and not ready.called:
                ready.errback(HandshakeFailed("the client factory returned no protocol"))
            return
        if ready is not None and not ready.called:
            ready.callback(protocol)

    def _nextServerKey(self, event):
        """
        The server announced a next key this client does not pin: say what
        to do before the server switches to it.
        """
        old, new = event.serverKey.toText(), event.key.toText()
        self.log.warn(
            "sudp: the server at {address} announces its next key {key} ({fingerprint}); it still proves "
            "{old}. Pin both before it switches: serverKey={old},{key} (or add the new key to the "
            "serverKeys file)",
            address=displayAddress(self.engine.serverAddr), key=new, fingerprint=event.key.fingerprint(), old=old,
        )

    def _handshakeFailed(self, error):
        ready, self.ready = self.ready, None
        self._finish()
        if ready is not None and not ready.called:
            ready.errback(error)

    def _ended(self, session, reason):
        EngineAdapter._ended(self, session, reason)
        self._finish()

    def _finish(self):
        self._stopTimer()
        self.stopProtocol()
        onEnd, self._onEnd = self._onEnd, None
        if onEnd is not None:
            self.reactor.callLater(0, onEnd)
