"""
Make the certificates of a vpn041 test deployment: a CA, the gateway's
certificate (for localhost, 127.0.0.1 and ::1) and client certificates,
each key beside its certificate (keys mode 0600).

    python examples/vpn041/make_certs.py DIR [client-name ...]

Test use only: a real deployment's CA key lives somewhere safer.
"""

import datetime
import ipaddress
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(common):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "vpn041 test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write(path, data, private=False):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def makeCA(directory, name="vpn041 test CA", days=30):
    """
    @return: C{(caKey, caCert)}, also written as ca.key and ca.pem.
    """
    key = _key()
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(key, hashes.SHA256()))
    _write(os.path.join(directory, "ca.key"), _pem(key), private=True)
    _write(os.path.join(directory, "ca.pem"), cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def makeCertificate(directory, name, ca, server=False, days=30):
    """
    Write NAME.key and NAME.pem, signed by C{ca} (a C{(key, cert)} pair):
    a server certificate for localhost, 127.0.0.1 and ::1, or a client one.

    @return: C{(certificate path, key path)}.
    """
    caKey, caCert = ca
    key = _key()
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(caCert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                                     else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1"))]), critical=False)
    cert = builder.sign(caKey, hashes.SHA256())
    keyPath, certPath = os.path.join(directory, name + ".key"), os.path.join(directory, name + ".pem")
    _write(keyPath, _pem(key), private=True)
    _write(certPath, cert.public_bytes(serialization.Encoding.PEM))
    return certPath, keyPath


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(__doc__.strip().splitlines()[3].strip(), file=sys.stderr)
        return 2
    directory, clients = argv[0], argv[1:] or ["client"]
    os.makedirs(directory, exist_ok=True)
    ca = makeCA(directory)
    makeCertificate(directory, "gateway", ca, server=True)
    for name in clients:
        makeCertificate(directory, name, ca)
    print(f"wrote ca.pem, gateway.pem/.key and {', '.join(n + '.pem/.key' for n in clients)} in {directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
