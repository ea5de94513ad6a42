# -*- test-case-name: sudp_test.test_sdnotify -*-
"""
systemd readiness notification, without libsystemd.

A service started by systemd with C{Type=notify} finds in C{NOTIFY_SOCKET}
the address of a datagram socket (a path, or C{@name} in the abstract
namespace) and tells systemd it is ready by sending it C{READY=1}
(sd_notify(3)). C{twist sudp} does so once every listener it has (the UDP
port and each C{--listen}) is listening and the reactor runs
(L{NotifyingService}); until then systemd holds back the units ordered after
it, and a server that cannot start exits before it is ready. Without
C{NOTIFY_SOCKET} (not under systemd, or not C{Type=notify}) nothing is sent.
"""

import os
import socket

from twisted.application import service
from twisted.internet.defer import Deferred, gatherResults
from twisted.logger import Logger

log = Logger()


def notify(state, environ=None):
    """
    Send C{state} (for instance C{"READY=1"}) to systemd's notification
    socket.

    @param state: newline-separated C{NAME=value} assignments (sd_notify(3)).
    @param environ: the environment to read C{NOTIFY_SOCKET} from (default:
        the process's).
    @return: True if the message was sent; False if there is no
        C{NOTIFY_SOCKET}, it is not a UNIX socket address, or sending
        failed (which is logged, never raised: a notification is advice).
    """
    environ = os.environ if environ is None else environ
    address = environ.get("NOTIFY_SOCKET", "")
    if address.startswith("@"):
        address = "\0" + address[1:]
    elif not address.startswith("/"):
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
    except OSError as e:
        log.warn("sudp: cannot notify systemd at {address!r}: {error}", address=environ["NOTIFY_SOCKET"],
                 error=e)
        return False
    return True


class NotifyingService(service.MultiService):
    """
    A C{MultiService} that tells systemd C{READY=1} once its
    children are listening, and C{STOPPING=1} when it stops.

    A child's C{startService} may return a C{Deferred} that fires once it
    listens (or once its failure to listen was reported); a child with a
    C{port} attribute counts as listening when that attribute is set. When
    every such Deferred has fired, the reactor runs and no child's C{port}
    is None, C{READY=1} is sent with a C{STATUS=} line.

    @ivar status: the text systemd shows for the service once it is ready.
    """

    def __init__(self, status="listening", reactor=None, notify=notify):
        service.MultiService.__init__(self)
        self.status = status
        self._reactor = reactor
        self._notify = notify

    def startService(self):
        service.Service.startService(self)
        started = [child.startService() for child in self]
        listening = gatherResults([d for d in started if isinstance(d, Deferred)], consumeErrors=True)
        listening.addCallbacks(self._whenRunning, lambda failure: None)

    def _whenRunning(self, _):
        reactor = self._reactor
        if reactor is None:
            from twisted.internet import reactor
        reactor.callWhenRunning(self._ready)

    def _ready(self):
        if self.running and all(getattr(child, "port", True) is not None for child in self):
            self._notify(f"READY=1\nSTATUS={self.status}")

    def stopService(self):
        self._notify("STOPPING=1")
        return service.MultiService.stopService(self)
