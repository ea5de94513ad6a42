# -*- test-case-name: sudp_test.test_handshakes, sudp_test.test_suites -*-
"""
Registries of suites by name and wire id, for datagram cipher suites
(L{sudp.interfaces.ICipherSuite}) and sframe stream suites
(L{sudp.interfaces.IStreamSuite}) alike.

A name that is not registered is looked for, once, among the objects
Twisted's plugin system finds in C{twisted.plugins} that provide the
registry's interface: that is how an application adds a suite without
touching sudp.
"""

from sudp.errors import ConfigurationError


class SuiteRegistry:
    """
    @ivar byName: the registered suites by name (a live dict).
    """

    def __init__(self, interface, what):
        self.interface = interface
        self.what = what
        self.byName = {}
        self._pluginsLoaded = False

    def register(self, suite):
        """
        Register C{suite} by its name and wire id.

        @raise ConfigurationError: if it does not provide the interface, its id
            is not 1-255, or its name or id is taken by another suite.
        """
        if not self.interface.providedBy(suite):
            raise ConfigurationError(f"{suite!r} does not provide {self.interface.__name__}")
        if not (isinstance(suite.suiteId, int) and 1 <= suite.suiteId <= 255):
            raise ConfigurationError(f"{self.what} {suite.name!r}: suiteId must be 1-255")
        for existing in self.byName.values():
            if existing.suiteId == suite.suiteId and existing.name != suite.name:
                raise ConfigurationError(
                    f"{self.what} id {suite.suiteId} of {suite.name!r} is taken by {existing.name!r}"
                )
        existing = self.byName.get(suite.name)
        if existing is not None and existing is not suite and type(existing) is not type(suite):
            raise ConfigurationError(f"{self.what} name {suite.name!r} is taken by {existing!r}")
        self.byName[suite.name] = suite
        return suite

    def loadPlugins(self):
        """
        Register every provider of the interface Twisted finds among its
        plugins; one that clashes with a registered suite is logged and skipped.
        """
        from twisted.logger import Logger
        from twisted.plugin import getPlugins

        log = Logger()
        for suite in getPlugins(self.interface):
            try:
                self.register(suite)
            except ConfigurationError as e:
                log.error("sudp: {what} plugin {suite!r} skipped: {error}", what=self.what, suite=suite, error=e)
        self._pluginsLoaded = True

    def get(self, name):
        """
        @return: the suite named C{name}.
        @raise ConfigurationError: naming the known suites if there is none.
        """
        suite = self.byName.get(name)
        if suite is None and not self._pluginsLoaded:
            self.loadPlugins()
            suite = self.byName.get(name)
        if suite is None:
            raise ConfigurationError(
                f"unknown {self.what} {name!r}; known: {', '.join(sorted(self.byName))}"
            )
        return suite

    def nameOf(self, suiteId):
        """
        @return: the name of the registered suite with wire id C{suiteId},
            or C{"suite N"} if none has it here.
        """
        for suite in self.byName.values():
            if suite.suiteId == suiteId:
                return suite.name
        return f"suite {suiteId}"

    def names(self):
        """
        @return: the names of every registered suite, plugins included.
        """
        if not self._pluginsLoaded:
            self.loadPlugins()
        return sorted(self.byName)

    def parseList(self, text):
        """
        Parse a comma-separated list of names, in preference order.

        @raise ConfigurationError: on an unknown name, a repeat, or an empty list.
        """
        names = [n.strip() for n in text.split(",") if n.strip()]
        if not names:
            raise ConfigurationError(f"the {self.what} list is empty")
        if len(set(names)) != len(names):
            raise ConfigurationError(f"a {self.what} is named twice in {text!r}")
        return tuple(self.get(n) for n in names)
