"""
A small game server showing server-side authority.

The sudp channel proves WHO sent a message (the session is authenticated,
and with C{authorizedKeys} the player's key is known) and that nobody altered
or replayed it. It does not make the message's CONTENT permissible: this
server treats every command as a possible cheat and checks it against the
game's rules and state before applying it.

Commands, one per message, as text: C{move DX DY} (each -1, 0 or 1),
C{say TEXT}. The server answers each player with C{ok X Y} or
C{rejected REASON}, and tells everyone of moves.

Run it with:

    twist sudp --port 9000 --app examples.game_server.GameFactory
"""

from twisted.internet import protocol
from twisted.logger import Logger

WORLD = 20  # the world is WORLD x WORLD cells
MAX_MOVES_PER_SECOND = 10
MAX_SAY = 200


class Player(protocol.Protocol):
    """
    One connected player. The server owns the position: the client only
    asks to move.
    """

    log = Logger()

    def connectionMade(self):
        self.x = self.y = WORLD // 2
        self.moves = []  # times of recent accepted moves (rate limit)
        key = self.transport.peerPublicKey
        self.name = key.fingerprint()[7:15] if key else f"guest-{self.transport.getPeer().port}"
        self.factory.players.add(self)
        self.transport.write(f"welcome {self.name} at {self.x} {self.y}".encode())

    def dataReceived(self, message):
        try:
            text = message.decode("utf-8")
        except UnicodeDecodeError:
            return self.reject("not UTF-8 text")
        command, _, rest = text.partition(" ")
        if command == "move":
            self.move(rest)
        elif command == "say":
            self.say(rest)
        else:
            self.reject(f"unknown command {command[:20]!r}")

    def reject(self, reason):
        self.log.info("rejected {name}: {reason}", name=self.name, reason=reason)
        self.transport.write(f"rejected {reason}".encode())

    def move(self, args):
        parts = args.split()
        if len(parts) != 2 or not all(p.lstrip("-").isdigit() for p in parts):
            return self.reject("move takes two integers")
        dx, dy = int(parts[0]), int(parts[1])
        # the channel says who sent this; only the rules say if it is allowed
        if max(abs(dx), abs(dy)) > 1:
            return self.reject("one cell per move")
        now = self.factory.clock.seconds()
        self.moves = [t for t in self.moves if now - t < 1.0]
        if len(self.moves) >= MAX_MOVES_PER_SECOND:
            return self.reject("too fast")
        x, y = self.x + dx, self.y + dy
        if not (0 <= x < WORLD and 0 <= y < WORLD):
            return self.reject("wall")
        if any(p is not self and (p.x, p.y) == (x, y) for p in self.factory.players):
            return self.reject("occupied")
        self.moves.append(now)
        self.x, self.y = x, y
        self.transport.write(f"ok {x} {y}".encode())
        self.factory.broadcast(f"moved {self.name} {x} {y}".encode(), exclude=self)

    def say(self, text):
        if not text or len(text) > MAX_SAY or not text.isprintable():
            return self.reject("say takes 1 to 200 printable characters")
        self.factory.broadcast(f"said {self.name} {text}".encode())

    def connectionLost(self, reason):
        self.factory.players.discard(self)


class GameFactory(protocol.Factory):
    """
    The game: the set of players and the clock used for rate limits.
    """

    protocol = Player

    def __init__(self, clock=None):
        from twisted.internet import reactor

        self.clock = clock or reactor
        self.players = set()

    def broadcast(self, message, exclude=None):
        for p in list(self.players):
            if p is not exclude:
                p.transport.write(message)
