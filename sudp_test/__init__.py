"""Tests of sudp, run with C{python -m twisted.trial sudp_test}."""
