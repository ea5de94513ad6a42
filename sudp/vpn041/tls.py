# -*- test-case-name: sudp_test.vpn041.test_gateway -*-
"""
The authentication plane's TLS (docs/vpn041.md, "Authentication plane"):
pyOpenSSL through Twisted, a certificate on each side, each verified
against the deployment's CA. That is the spec's "encrypted and signed":
every auth message travels inside TLS, whose handshake both peers sign.

C{encryptionType} picks the protocol version and cipher suites
(L{sudp.vpn041.settings.ENCRYPTION_TYPES}). The server restricts what it
accepts; the client checks what was negotiated once the handshake is done
(L{checkNegotiated}), so either side refuses a connection outside its type.
"""

from twisted.internet import ssl

from sudp.errors import ConfigurationError, errorText
from sudp.vpn041.settings import ENCRYPTION_TYPES

_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
_NAMES = {"1.2": "TLSv1.2", "1.3": "TLSv1.3"}


def readPEM(path, what):
    """
    @return: the bytes of a PEM file.
    @raise ConfigurationError: naming the file.
    """
    try:
        with open(path, "rb") as f:
            return f.read()
    except (OSError, ValueError) as e:
        raise ConfigurationError(f"vpn041: cannot read the {what} {path!r} "
                                 f"({errorText(e)})") from None


def _load(certFile, keyFile, caFile):
    try:
        mine = ssl.PrivateCertificate.loadPEM(readPEM(certFile, "certificate") + b"\n"
                                              + readPEM(keyFile, "private key"))
        ca = ssl.Certificate.loadPEM(readPEM(caFile, "CA certificate"))
    except ConfigurationError:
        raise
    except Exception as e:
        raise ConfigurationError(f"vpn041: the certificate, key or CA is not usable PEM: {e}") from None
    return mine, ca


def _versions(encryptionType):
    low, high, _, ciphers12 = ENCRYPTION_TYPES[encryptionType]
    extra = {"raiseMinimumTo": _VERSIONS[low], "lowerMaximumSecurityTo": _VERSIONS[high]}
    if ciphers12:
        extra["acceptableCiphers"] = ssl.AcceptableCiphers.fromOpenSSLCipherString(ciphers12)
    return extra


class _ServerOptions(ssl.CertificateOptions):
    """
    CertificateOptions that also restrict the TLS 1.3 suites.
    """

    tls13Suites = None

    def getContext(self):
        context = ssl.CertificateOptions.getContext(self)
        if self.tls13Suites and not getattr(context, "_vpn041Suites", False):
            context.set_tls13_ciphersuites(self.tls13Suites.encode())
            context._vpn041Suites = True
        return context


def serverOptions(certFile, keyFile, caFile, encryptionType):
    """
    @return: TLS options for the gateway: its certificate, and client
        certificates required and verified against the CA.
    """
    mine, ca = _load(certFile, keyFile, caFile)
    options = _ServerOptions(privateKey=mine.privateKey.original, certificate=mine.original, verify=True,
                             caCerts=[ca.original], requireCertificate=True, **_versions(encryptionType))
    options.tls13Suites = ENCRYPTION_TYPES[encryptionType][2]
    return options


def clientOptions(host, certFile, keyFile, caFile, encryptionType):
    """
    @return: TLS options for a client: the gateway's certificate verified
        against the CA and against C{host} (name or IP address), and the
        client's certificate presented.
    """
    mine, ca = _load(certFile, keyFile, caFile)
    return ssl.optionsForClientTLS(host, trustRoot=ca, clientCertificate=mine,
                                   extraCertificateOptions=_versions(encryptionType))


def checkNegotiated(connection, encryptionType):
    """
    @param connection: the C{OpenSSL.SSL.Connection} after its handshake.
    @return: None if the version and cipher suite are allowed by
        C{encryptionType}, else the reason.
    """
    low, high, suites13, ciphers12 = ENCRYPTION_TYPES[encryptionType]
    version, cipher = connection.get_protocol_version_name(), connection.get_cipher_name()
    if version not in {_NAMES[low], _NAMES[high]}:
        return f"TLS version {version} is not allowed by encryptionType {encryptionType}"
    allowed = (suites13 or ciphers12 or "").split(":")
    if cipher not in allowed:
        return f"cipher suite {cipher} is not allowed by encryptionType {encryptionType}"
    return None
