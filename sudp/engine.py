# -*- test-case-name: sudp_test.test_engine -*-
"""
The contract every sudp engine keeps (sans-IO, as aioquic's
C{QuicConnection} and h11's C{Connection}): it imports no reactor, holds
no Twisted object, and is driven with the time passed in.

  - feed it: C{receiveDatagrams(datagrams, addr, now)} (or one at a time,
    C{receiveDatagram(data, addr, now)}), C{handleTimer(now)} once
    C{nextDeadline()} has passed, and its API calls (C{sendMessage(session,
    message, now)}, C{closeSession(session, now)}, a client's C{start}...);
  - pull from it: C{datagramsToSend()}, the C{(datagram, addr)} pairs it
    queued, and C{nextEvents()}, the events it reported
    (L{sudp.udp.events}), each list taken once; then C{nextDeadline()},
    when to call C{handleTimer} next (None: never).

One exception to pulling, for speed: a driver may give a sudp/1 session a
sink (C{deliverTo(session, sink)}, L{sudp.udp.delivery}), and the engine
then hands that session's messages to C{sink(message)} as it authenticates
them, whenever no event is pending; with an event pending they queue
behind it as events, so the order is the same either way.

A stream engine (L{IStreamEngine}, sframe's
L{sudp.stream.connection.StreamConnection}) keeps the same contract over
one byte stream: C{receiveData(data, now)} in, C{dataToSend()} out.

A driver (a Twisted adapter, peer mode, a test helper, a benchmark) calls
these and nothing else; L{drain} is the loop they share.

Inside, a datagram engine owns its sessions (L{sudp.udp.session.Session})
and gives each what it needs through L{ISessionHost}, which
L{EngineOutput} implements: a session never touches its engine's lists.
"""

from zope.interface import Attribute, Interface, implementer


class IDatagramEngine(Interface):
    """
    A sans-IO protocol engine over datagrams (sudp/1 server and client).
    """

    def receiveDatagram(data, addr, now):
        """
        Handle one datagram from C{addr} at time C{now}; never raises on bad
        input (it is dropped and counted).
        """

    def receiveDatagrams(datagrams, addr, now):
        """
        Handle several datagrams from C{addr}, in order.
        """

    def handleTimer(now):
        """
        Run what is due at C{now} (retransmissions, keepalives, timeouts).
        """

    def nextDeadline():
        """
        @return: when L{handleTimer} should next be called, or None.
        """

    def datagramsToSend():
        """
        @return: the C{(datagram, addr)} pairs queued since the last call,
            in order; the queue is then empty.
        """

    def nextEvents():
        """
        @return: the events reported since the last call, in order; the
            list is then empty.
        """

    def sendMessage(session, message, now):
        """
        Send one application message on an open C{session} of this engine.

        @raise sudp.errors.MessageTooLarge: over the session's maxMessageSize.
        @raise sudp.errors.SessionClosed: if the session is not open.
        """

    def sendMessages(session, messages, now):
        """
        Send each of C{messages} (a list or tuple) as one application
        message on C{session}, in order, as a burst (sealed in one native
        loop where the speedups allow). A message that raises, as
        L{sendMessage} does, ends the burst: those before it are queued.
        """

    def closeSession(session, now, text=""):
        """
        Close C{session}, telling the peer.
        """


class ISessionHost(Interface):
    """
    What a L{sudp.udp.session.Session} needs from the engine that owns it,
    and all it uses: it holds no other reference into the engine.
    """

    random = Attribute("a function C{n -> n random bytes} (ephemeral keys, path challenges)")
    identity = Attribute("this side's L{sudp.keys.Identity}: a server signs its rekey responses with it")
    authorizedKeys = Attribute("(server) None, or the client keys that may authenticate")
    nextIdentity = Attribute("(server) the identity it will use next, announced to clients with proof; or None")
    signatureSize = Attribute("the longest signature the handshake's rekeys carry (bounds a REKEY_RESPONSE record)")

    def queueDatagram(datagram, addr):
        """
        Queue C{datagram} to be sent to C{addr} (C{datagramsToSend}).
        """

    def reportEvent(event):
        """
        Report C{event} (L{sudp.udp.events}) to the driver (C{nextEvents}).
        """

    def deliver(session, message):
        """
        Hand on one authenticated application C{message} of C{session}: to
        the session's sink (L{sudp.udp.delivery}) when it has one and
        no event is pending, else as a C{MessageReceived} event.
        """

    def drop(reason):
        """
        Count one datagram or record dropped for C{reason}.
        """

    def count(name):
        """
        Add one to the engine's counter C{name} (a server's path-validation
        counters).
        """

    def armTimer(session, when):
        """
        Call C{session.onTimer(now)} at C{when} or earlier.
        """

    def armCiphers(epoch):
        """
        Give C{epoch} its keyed cipher objects, within the engine's bound on
        them (L{sudp.udp.ciphercache}).
        """

    def sessionOpened(session):
        """
        C{session} is open (it has reported L{sudp.udp.events.SessionOpened}).
        """

    def sessionClosed(session, wasOpen):
        """
        C{session} is closed; C{wasOpen} says whether it had opened.
        """

    def resetToken(session):
        """
        @return: (server) the stateless reset token of C{session} at its
            current address (L{sudp.udp.reset}), or None: no token is sent.
        """

    def nextServerKey(session, key):
        """
        (Client) The server proved C{key}, a L{sudp.keys.PublicKey}, to be
        its next key.
        """


class IStreamEngine(Interface):
    """
    A sans-IO protocol engine over one byte stream (sframe). Addresses are
    C{(host, port)} tuples or None.
    """

    def start(now, localAddr, peerAddr):
        """
        The stream is up: begin (a client sends its first message).
        """

    def receiveData(data, now):
        """
        Take bytes from the stream, in any pieces; never raises on bad
        input (the connection ends, with a reason).
        """

    def handleTimer(now):
        """
        Run what is due at C{now} (timeouts, keepalives, coalesced writes).
        """

    def nextDeadline():
        """
        @return: when L{handleTimer} should next be called, or None.
        """

    def dataToSend():
        """
        @return: the bytes to write on the stream since the last call
            (C{b""} if none), taken once.
        """

    def nextEvents():
        """
        @return: the events reported since the last call, in order; the
            list is then empty.
        """

    def sendData(data, now):
        """
        Send application bytes (coalesced until the next L{handleTimer}).

        @return: False when they only wait for the timer: nothing new to
            pull (C{dataToSend}, C{nextEvents}, C{nextDeadline}) but the
            deadline the bytes' first write set.
        """

    def writeFrame(code, data, now):
        """
        Send C{data} in frames of the application's C{code}.
        """

    def close(now):
        """
        Close, telling the peer; the stream is closed once that is written.
        """

    def abort(now):
        """
        Close the stream at once, sending nothing more.
        """

    def applicationFailed(now):
        """
        The application raised on what it was given: the connection ends.
        """

    def connectionLost(now, clean, detail):
        """
        The stream below has ended (C{clean}: an orderly close).
        """

    def workDone(job, now):
        """
        Work the engine asked for (L{sudp.work.WorkNeeded}) was done.
        """

    def workFailed(job, now):
        """
        Work the engine asked for raised, or was cancelled.
        """

    def pauseReading(now):
        """
        The application stopped reading: time spent paused counts against
        no peer.
        """

    def resumeReading(now):
        """
        The application reads again.
        """


@implementer(ISessionHost)
class EngineOutput:
    """
    What L{IDatagramEngine} asks of every engine that queues into
    C{self.outbox} and C{self.events} and runs its timers in C{onTimer}:
    the pull half, C{handleTimer}, and the calls on one of its sessions;
    and, over C{self.timers}, C{self.ciphers} and C{self.counters}, the
    L{ISessionHost} its sessions use (the engine adds C{drop},
    C{sessionOpened} and C{sessionClosed}).
    """

    nextIdentity = None  # a server rolling its key sets it

    def queueDatagram(self, datagram, addr):
        self.outbox.append((datagram, addr))

    def reportEvent(self, event):
        self.events.append(event)

    def count(self, name):
        self.counters[name] += 1

    def armTimer(self, session, when):
        self.timers.arm(session, when)

    def armCiphers(self, epoch):
        self.ciphers.arm(epoch)

    def resetToken(self, session):
        return None  # a server engine makes tokens

    def nextServerKey(self, session, key):
        pass  # a client engine reports them

    _fast = None  # the engine's C data path (sudp.udp.datapath.fastPath), or None

    def sendMessage(self, session, message, now):
        fast = self._fast
        if fast is None or not fast.send(session, message, now, self.outbox):
            session.sendMessage(message, now)

    def sendMessages(self, session, messages, now):
        # the C loop seals the common case; it stops at the first message it
        # leaves to sendMessage (the reference), and resumes after it
        fast = self._fast
        i, n = 0, len(messages)
        while i < n:
            if fast is not None:
                i = fast.sendMany(session, messages, i, now, self.outbox)
                if i == n:
                    return
            self.sendMessage(session, messages[i], now)
            i += 1

    def closeSession(self, session, now, text=""):
        session.close(now, text=text)

    def datagramsToSend(self):
        out = self.outbox
        if not out:
            return []  # never the engine's own list, which it appends to later
        self.outbox = []
        return out

    def nextEvents(self):
        events = self.events
        if not events:
            return []
        self.events = []
        return events

    def handleTimer(self, now):
        self.onTimer(now)


def drain(engine, send, handle):
    """
    Take everything an engine has to give: its datagrams to C{send(pairs)}
    and its events, one by one, to C{handle(event)}, until both are empty
    (handling an event may queue more of either).
    """
    while True:
        out = engine.datagramsToSend()
        if out:
            send(out)
        events = engine.nextEvents()
        if not events:
            return
        for event in events:
            handle(event)
