"""
C{python -m sudp}: the same as the C{sudp} command.
"""

import sys

from sudp.cli import main

sys.exit(main())
