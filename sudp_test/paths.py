"""
Paths of the checkout the tests run from.
"""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
"""The root of the checkout (the directory holding sudp/ and sudp_test/)."""
