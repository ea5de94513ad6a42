"""
The attacks of the vpn041 hardening review (docs/vpn041.md, "Attacks of
the hardening review"), each run against real gateways and clients on
127.0.0.1: reflection, replay and the CBC padding oracle, outsiders ending
sessions, and the authentication port held by idle connections.
"""

from twisted.internet import defer
from twisted.trial import unittest

from sudp_test.test_vpn041 import Vpn041Mixin, udpAddress, waitUntil


def modeName(useEncryption, authenticated):
    """
    @return: a short name of a data-plane mode, for messages.
    """
    return {(False, False): "plaintext", (True, False): "cbc", (False, True): "gmac", (True, True): "gcm"}[
        (useEncryption, authenticated)]


class AttackMixin(Vpn041Mixin):
    """
    Sessions to attack, and the three places a datagram can come from: the
    client's own UDP socket, the gateway's, and a third address.
    """

    @defer.inlineCallbacks
    def captured(self, useEncryption, authenticated):
        """
        @return: C{(gateway, client, p, g, up, down)}: one session, with one
            datagram captured in each direction (C{up} from the client, C{down}
            from the gateway), both delivered.
        """
        gateway, _, client, p, g = yield self.session(useEncryption, authenticated)
        up, down = self.captureInput(gateway), self.captureOutput(gateway)
        p.transport.write(b"client to gateway")
        g.transport.write(b"gateway to client")
        yield g.waitFor(1)
        yield p.waitFor(1)
        return gateway, client, p, g, up[0], down[0]

    def handled(self, side, protocol):
        """
        @return: how many datagrams C{side} (a gateway or a client) has
            delivered to C{protocol} or dropped, plus one if its session ended.
        """
        return len(protocol.messages) + sum(side.drops.values()) + (not protocol.transport.connected)

    def toClientFrom(self, sock, client, datagram):
        """
        Send C{datagram} to the client from C{sock}.
        """
        host = client.udpPort.getHost()
        sock.sendto(datagram, (host.host, host.port))


class ReflectionTests(AttackMixin, unittest.TestCase):
    """
    Issue 16 point 1: a datagram sent back towards its sender is never
    delivered, whatever address it comes from; one from a third address
    is a counted drop that cannot end the session.
    """

    @defer.inlineCallbacks
    def reflect(self, useEncryption, authenticated):
        name = modeName(useEncryption, authenticated)
        gateway, client, p, g, up, down = yield self.captured(useEncryption, authenticated)
        third = self.rawSocket()
        before = self.handled(gateway, g), self.handled(client, p)
        # from a third address: each datagram to the side that sent it, and to the other
        third.sendto(down, udpAddress(gateway))
        third.sendto(up, udpAddress(gateway))
        self.toClientFrom(third, client, up)
        self.toClientFrom(third, client, down)
        yield waitUntil(lambda: self.handled(gateway, g) >= before[0] + 2 and self.handled(client, p) >= before[1] + 2,
                        f"{name}: four datagrams handled")
        self.assertEqual((g.messages, p.messages), ([b"client to gateway"], [b"gateway to client"]), name)
        self.assertEqual((gateway.drops["wrong-address"], client.drops["wrong-address"]), (2, 2), name)
        self.assertIn(client.session.sessionId, gateway.sessions, name)
        self.assertFalse(client.fatal.called, name)

    def test_plaintext(self):
        """
        useEncryption false: a datagram sent back to its sender, from the
        peer's address or a third one, is dropped and counted.
        """
        return self.reflect(False, False)

    def test_cbc(self):
        """
        useEncryption true (AES-CBC): the same.
        """
        return self.reflect(True, False)

    def test_authenticatedPlaintext(self):
        """
        The authenticated variant without encryption (GMAC): the same.
        """
        return self.reflect(False, True)

    def test_authenticated(self):
        """
        The authenticated variant with encryption (AES-GCM): the same; on the
        landed code the gateway's push sent back to the gateway was
        delivered as the client's.
        """
        return self.reflect(True, True)
