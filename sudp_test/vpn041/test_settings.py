# -*- test-case-name: sudp_test.vpn041.test_settings -*-
"""
Tests for L{sudp.vpn041.settings}.
"""

import os

from twisted.trial import unittest

from sudp.errors import ConfigurationError
from sudp.vpn041.settings import AppSettings, loadAppSettings, parseAppSettings

from sudp_test.vpn041.helpers import BAD_SETTINGS, NEGOTIATED, certs

class AppSettingsTests(unittest.TestCase):
    """
    The flat appSettings file: exactly two keys of the right types.
    """

    def setUp(self):
        self.certs = certs()

    def test_good(self):
        """
        Every encryptionType with either useEncryption value loads.
        """
        for encryptionType in NEGOTIATED:
            for useEncryption in (True, False):
                path = self.certs.appSettings(f"good-{encryptionType}-{useEncryption}.json", {
                    "appSettings": {"useEncryption": useEncryption, "encryptionType": encryptionType}})
                self.assertEqual(loadAppSettings(path), AppSettings(useEncryption, encryptionType))

    def test_bad(self):
        """
        Unknown and missing keys, wrong types (useEncryption "yes", 1, null;
        encryptionType 5, unknown, a list or an object), nested or non-flat
        documents, and text that is not JSON are each a ConfigurationError
        naming the file and what is wrong.
        """
        problems = []
        for name, (document, mention) in BAD_SETTINGS.items():
            path = self.certs.appSettings(f"bad-{name}.json", document)
            try:
                loadAppSettings(path)
            except ConfigurationError as e:
                if path not in str(e) or mention not in str(e):
                    problems.append(f"{name}: {e}")
            except Exception as e:
                problems.append(f"{name}: {type(e).__name__} instead of ConfigurationError: {e}")
            else:
                problems.append(f"{name}: accepted")
        self.assertEqual(problems, [])

    def test_missingFile(self):
        """
        A missing file is a ConfigurationError naming it.
        """
        path = os.path.join(self.certs.dir, "does-not-exist.json")
        error = self.assertRaises(ConfigurationError, loadAppSettings, path)
        self.assertIn(path, str(error))

    def test_parseNamesTheSource(self):
        """
        parseAppSettings names the source it was given.
        """
        error = self.assertRaises(ConfigurationError, parseAppSettings, "{", "settings.json")
        self.assertIn("settings.json", str(error))

    def test_constructorChecks(self):
        """
        AppSettings itself refuses values of the wrong type.
        """
        for args in [("yes", "Tls13"), (1, "Tls13"), (None, "Tls13"), (True, 5), (True, "Tls14")]:
            self.assertRaises(ConfigurationError, AppSettings, *args)
