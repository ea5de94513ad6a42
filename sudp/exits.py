# -*- test-case-name: sudp_test.test_cli, sudp_test.test_netcat -*-
"""
The exit statuses and waits of the C{sudp} command (L{sudp.cli}), shared
with its clients (L{sudp.netcat}, L{sudp.vpn041.netcat}) without their
importing the command.
"""

import signal

EXIT_OK = 0
"""Exit status: success."""
EXIT_FAILURE = 1
"""Exit status: an error sudp reports (a failed connection, a lost session, a bad key file)."""
EXIT_USAGE = 2
"""Exit status: a usage error (argparse's)."""
EXIT_INTERRUPTED = 128 + signal.SIGINT
"""Exit status: interrupted by SIGINT (Ctrl-C), 130."""
EXIT_TERMINATED = 128 + signal.SIGTERM
"""Exit status: C{sudp connect} or C{sudp vpn041} terminated by SIGTERM, 143."""

DEFAULT_WAIT = 1.0
"""
C{sudp connect --wait}: after end of input, the session closes once no
message has arrived for this many seconds.
"""

DEFAULT_MAX_WAIT = 30.0
"""
C{sudp connect --max-wait}: after end of input, the session closes this many
seconds later at the latest.
"""
