# -*- test-case-name: sudp_test.test_cli -*-
"""
C{python -m sudp}: the same as the C{sudp} command.
"""

import sys

from sudp.cli import main

sys.exit(main())
