# -*- test-case-name: sudp_test.test_benchmarks -*-
"""
Two sans-IO engines joined in memory, through the engine contract only
(L{sudp.engine.drain}): what the benchmarks use to open a session without
sockets. Not a benchmark itself.
"""

from sudp.engine import drain
from sudp.work import WorkNeeded


def runWork(engine, now):
    """
    @return: an event handler for L{drain} that runs each L{WorkNeeded} job
        of C{engine} inline and hands it back (C{engine.workDone}); other
        events are dropped.
    """
    def handle(event):
        if type(event) is WorkNeeded:
            event.job.run()
            engine.workDone(event.job, now)
    return handle


def exchange(client, server, clientAddr, serverAddr, now, rounds):
    """
    Carry datagrams between C{client} (at C{clientAddr}) and C{server} (at
    C{serverAddr}) for C{rounds} rounds at time C{now}: each round drains
    the client into the server, then the server into the client. Off-thread
    work runs inline; every other event is taken and dropped, so both
    engines end with nothing queued.
    """
    def toServer(pairs):
        for data, _ in pairs:
            server.receiveDatagram(data, clientAddr, now)

    def toClient(pairs):
        for data, _ in pairs:
            client.receiveDatagram(data, serverAddr, now)

    for _ in range(rounds):
        drain(client, toServer, runWork(client, now))
        drain(server, toClient, runWork(server, now))
