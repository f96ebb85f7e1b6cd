"""Certificates made at run time (``cryptography``): a CA, a server certificate
for 127.0.0.1/localhost (also usable as a route peer certificate: it carries
both serverAuth and clientAuth) and a client certificate."""

import datetime
import ipaddress
import ssl

import pytest

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402


class Certs:
    """Paths of the generated PEM files, and helpers for nats-py contexts."""

    def __init__(self, directory):
        self.dir = directory

    def path(self, name):
        return str(self.dir / name)

    @property
    def ca(self):
        return self.path("ca.pem")

    @property
    def server_cert(self):
        return self.path("server-cert.pem")

    @property
    def server_key(self):
        return self.path("server-key.pem")

    @property
    def client_cert(self):
        return self.path("client-cert.pem")

    @property
    def client_key(self):
        return self.path("client-key.pem")

    def client_context(self, with_cert=False):
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca)
        if with_cert:
            ctx.load_cert_chain(self.client_cert, self.client_key)
        return ctx

    def issue(self, name, subject, sans=(), usages=(ExtendedKeyUsageOID.CLIENT_AUTH,)):
        """Sign a leaf certificate for ``subject`` (an x509.Name) with the CA:
        ``<name>-cert.pem`` and ``<name>-key.pem`` (used for client
        certificates with chosen subjects, e.g. verify_and_map)."""
        start, end = self.validity
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder()
                   .subject_name(subject).issuer_name(self.ca_cert.subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(start).not_valid_after(end)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                                  critical=True)
                   .add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                       self.ca_key.public_key()), critical=False))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)),
                                            critical=False)
        cert = builder.sign(self.ca_key, hashes.SHA256())
        (self.dir / ("%s-cert.pem" % name)).write_bytes(
            cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, self.dir / ("%s-key.pem" % name))
        return self.path("%s-cert.pem" % name), self.path("%s-key.pem" % name)

    def tls_block(self, verify=False, extra=""):
        return ("tls { cert_file: %r, key_file: %r, ca_file: %r%s%s }\n"
                % (self.server_cert, self.server_key, self.ca,
                   ", verify: true" if verify else "", ", " + extra if extra else "")
                ).replace("'", '"')


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(key, path):
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


def make_certs(directory):
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=2)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (x509.CertificateBuilder()
               .subject_name(_name("pluggy-nats test CA")).issuer_name(_name("pluggy-nats test CA"))
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                            crl_sign=True, content_commitment=False,
                                            key_encipherment=False, data_encipherment=False,
                                            key_agreement=False, encipher_only=False,
                                            decipher_only=False), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                              critical=False)
               .sign(ca_key, hashes.SHA256()))
    (directory / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))

    certs = Certs(directory)
    certs.ca_key, certs.ca_cert, certs.validity = ca_key, ca_cert, (start, end)

    def leaf(name, cn, usages, sans):
        certs.issue(name, _name(cn), sans, usages)

    both = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    leaf("server", "localhost", both,
         [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    leaf("client", "test-client", [ExtendedKeyUsageOID.CLIENT_AUTH],
         [x509.RFC822Name("client@example.com")])
    return certs


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def start(make_server, go_nats_server):
    """start("ours" | "go", config) -> a running server with that config."""
    def start(impl, config):
        return (make_server if impl == "ours" else go_nats_server)(config=config)
    return start
