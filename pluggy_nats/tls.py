"""TLS as nats-server does it (PROTOCOL.md A9): the ``tls {}`` block, the
``--tls*`` flags, and the handshake on a connection's socket (``gevent.ssl``).

The same block configures client TLS (top level) and route TLS (``cluster {
tls {} }``). Where the handshake happens differs, as on the wire with
nats-server 2.15.1:

* clients: INFO (``tls_required``) goes out in plaintext, then the client starts
  the handshake; with ``handshake_first`` the handshake comes before INFO;
* routes: the handshake comes first on both sides, then CONNECT/INFO; peers are
  always verified (``verify`` is implied).

A failed or timed-out handshake closes the connection with
``ClosedReason.TLS_HANDSHAKE_ERROR``.
"""

import hashlib
import re

from gevent import ssl

from .conf import ConfigError, parse_duration

__all__ = ["TLSConfig", "TLSHandshakeError", "parse_tls", "apply_tls_flags", "handshake",
           "DEFAULT_TLS_TIMEOUT"]

DEFAULT_TLS_TIMEOUT = 2.0

_VERSIONS = {
    "1.2": ssl.TLSVersion.TLSv1_2, "tls1.2": ssl.TLSVersion.TLSv1_2,
    "tls12": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3, "tls1.3": ssl.TLSVersion.TLSv1_3,
    "tls13": ssl.TLSVersion.TLSv1_3,
}

# nats-server keys we recognise but do not implement (an error says so, rather
# than "unknown field", so the operator knows the key is spelt right).
_UNSUPPORTED = ("verify_cert_and_check_known_urls", "ocsp_peer", "certs",
                "connection_rate_limit", "insecure")
# The Windows certificate store: nats-server itself refuses these elsewhere.
_CERT_STORE = ("cert_store", "cert_match", "cert_match_by", "ca_certs_match",
               "cert_match_skip_invalid")

# Go crypto/tls suite names (tls.CipherSuites() and InsecureCipherSuites()) ->
# OpenSSL names. TLS 1.3 suites are not configurable in Go (nor through
# Python's set_ciphers): accepted and left to the defaults, as Go does.
CIPHERS = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_RSA_WITH_RC4_128_SHA": "RC4-SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA": "DES-CBC3-SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256": "AES128-SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA": "ECDHE-ECDSA-RC4-SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA": "ECDHE-RSA-RC4-SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA": "ECDHE-RSA-DES-CBC3-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": "ECDHE-ECDSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "ECDHE-RSA-AES128-SHA256",
    "TLS_AES_128_GCM_SHA256": None,
    "TLS_AES_256_GCM_SHA384": None,
    "TLS_CHACHA20_POLY1305_SHA256": None,
}

# Go curve names -> OpenSSL's; None: known to Go, not settable through Python's
# ssl (post-quantum hybrids), skipped in favour of the next one listed.
CURVES = {
    "CurveP256": "prime256v1", "CurveP384": "secp384r1", "CurveP521": "secp521r1",
    "X25519": "X25519", "X25519MLKEM768": None, "SecP256r1MLKEM768": None,
    "SecP384r1MLKEM1024": None,
}

_PIN = re.compile(r"^[A-Fa-f0-9]{64}$")


class TLSHandshakeError(Exception):
    """The TLS handshake failed or did not finish within the timeout."""


class TLSConfig:
    """A parsed ``tls {}`` block. ``server_context()`` / ``client_context()``
    build (and cache) the ``ssl.SSLContext`` for each side."""

    def __init__(self, cert_file=None, key_file=None, ca_file=None, verify=False,
                 timeout=DEFAULT_TLS_TIMEOUT, handshake_first=False, min_version=None,
                 verify_and_map=False):
        self.cert_file = cert_file
        self.key_file = key_file
        self.ca_file = ca_file
        self.verify = verify or verify_and_map
        # verify_and_map: the client certificate names the user (the auth
        # plugin's tlsmap.py); it implies verify.
        self.verify_and_map = verify_and_map
        self.timeout = timeout
        self.handshake_first = handshake_first
        self.min_version = min_version  # an ssl.TLSVersion or None (the ssl default)
        self.first_fallback = None  # handshake_first with a fallback delay (seconds)
        # pinned_certs: hex SHA-256 of the peer certificate's SubjectPublicKeyInfo
        # (checked after every handshake, both sides); None = no pinning
        self.pinned_certs = None
        self.ciphers = None  # OpenSSL cipher string from cipher_suites (TLS 1.2)
        self.curve = None  # OpenSSL name of the first usable curve_preferences entry
        self._server_ctx = None
        self._client_ctx = None

    def _key(self):
        return (self.cert_file, self.key_file, self.ca_file, self.verify, self.timeout,
                self.handshake_first, self.first_fallback, self.min_version,
                self.verify_and_map, self.pinned_certs, self.ciphers, self.curve)

    def __eq__(self, other):
        return isinstance(other, TLSConfig) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        return "TLSConfig(cert_file=%r, key_file=%r, ca_file=%r, verify=%r, timeout=%r%s)" % (
            self.cert_file, self.key_file, self.ca_file, self.verify, self.timeout,
            ", handshake_first=True" if self.handshake_first else "")

    def as_dict(self):
        """JSON-friendly form (``--explain-config``, /varz)."""
        return {"cert_file": self.cert_file, "key_file": self.key_file,
                "ca_file": self.ca_file, "verify": self.verify, "timeout": self.timeout,
                "handshake_first": self.handshake_first, "verify_and_map": self.verify_and_map}

    def _common(self, ctx):
        if self.min_version is not None:
            ctx.minimum_version = self.min_version
        if self.ciphers:
            ctx.set_ciphers(self.ciphers)
        if self.curve:
            ctx.set_ecdh_curve(self.curve)
        if self.cert_file:
            ctx.load_cert_chain(self.cert_file, self.key_file)

    def server_context(self):
        """The context accepting connections: presents our certificate; asks
        for (and requires) a client certificate when ``verify``."""
        if self._server_ctx is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._common(ctx)
            if self.verify:
                ctx.verify_mode = ssl.CERT_REQUIRED
                if self.ca_file:
                    ctx.load_verify_locations(self.ca_file)
                else:
                    ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
            else:
                ctx.verify_mode = ssl.CERT_NONE
            self._server_ctx = ctx
        return self._server_ctx

    def monitor_context(self):
        """The HTTPS monitor's context: our certificate, no client certificate
        asked for (nats-server clones the client TLS config with NoClientCert)."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._common(ctx)
        ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def client_context(self):
        """The context for dialling (routes): verifies the peer against
        ``ca_file`` (or the system roots) and its host name; presents our
        certificate for the peer to verify."""
        if self._client_ctx is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            self._common(ctx)
            if self.ca_file:
                ctx.load_verify_locations(self.ca_file)
            else:
                ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
            self._client_ctx = ctx
        return self._client_ctx

    def check(self, server_side=True, client_side=False):
        """Build the contexts now, so bad files are config errors at start."""
        if server_side:
            self.server_context()
        if client_side:
            self.client_context()


def _bool(value):
    if isinstance(value, bool):
        return value
    raise ValueError("expected a boolean, got %r" % (value,))


def _str(value):
    if not isinstance(value, str):
        raise ValueError("expected a string, got %r" % (value,))
    return value


def parse_tls(block, where="tls", force_verify=False, block_pos=None, client_side=False,
              dial_only=False):
    """A :class:`TLSConfig` from a ``tls {}`` block (a mapping). Errors raise
    :class:`~pluggy_nats.options.ConfigError` with one ``(position, message)``
    per problem, positioned at the offending key when the block knows it.
    ``force_verify`` (routes) makes ``verify`` true whatever the block says;
    ``client_side`` also builds the dialling context (routes); ``dial_only``
    (a leaf's remote) is a block used only to dial: a certificate is optional."""
    errors = []
    if not isinstance(block, dict):
        raise ConfigError([(block_pos, "%s: expected a map, got %r" % (where, block))])
    getpos = getattr(block, "position", None)

    def position(key):
        pos = getpos(key) if getpos else None
        return pos or block_pos

    cfg = TLSConfig()
    for key, value in block.items():
        k = key.lower()
        try:
            if k == "cert_file":
                cfg.cert_file = _str(value)
            elif k == "key_file":
                cfg.key_file = _str(value)
            elif k == "ca_file":
                cfg.ca_file = _str(value)
            elif k == "verify":
                cfg.verify = _bool(value)
            elif k == "verify_and_map":
                # clients: the certificate names the user (the auth plugin);
                # routes: it must name the cluster authorization user
                cfg.verify_and_map = _bool(value)
            elif k == "timeout":
                if isinstance(value, bool):
                    raise ValueError("expected a number or a duration, got %r" % (value,))
                cfg.timeout = float(parse_duration(value))
                if cfg.timeout <= 0:
                    raise ValueError("must be positive")
            elif k == "handshake_first" or k == "first":
                # true | false | "auto" (= 50ms) | a duration: with a delay, a
                # client that has not sent a ClientHello by then gets the
                # plaintext INFO and the usual INFO-then-TLS (nats-server).
                if isinstance(value, str):
                    if value.lower() in ("true", "on", "yes"):
                        value = True
                    elif value.lower() in ("false", "off", "no"):
                        value = False
                if isinstance(value, str):
                    delay = 0.05 if value.lower() == "auto" else parse_duration(value)
                    cfg.handshake_first, cfg.first_fallback = True, float(delay)
                else:
                    cfg.handshake_first, cfg.first_fallback = _bool(value), None
            elif k == "min_version":
                version = _VERSIONS.get(str(value).lower())
                if version is None:
                    raise ValueError("unknown version %r (use \"1.2\" or \"1.3\")" % (value,))
                cfg.min_version = version
            elif k == "pinned_certs":
                cfg.pinned_certs = _pinned_certs(value)
            elif k == "cipher_suites":
                cfg.ciphers = _cipher_suites(value)
            elif k == "curve_preferences":
                cfg.curve = _curve_preferences(value)
            elif k in _CERT_STORE:
                errors.append((position(key), "cert_store not compatible with current "
                               "operating system"))
            elif k in _UNSUPPORTED:
                errors.append((position(key), "%s.%s is not supported yet" % (where, key)))
            else:
                errors.append((position(key), "%s: unknown field %r" % (where, key)))
        except (TypeError, ValueError) as exc:
            errors.append((position(key), "%s.%s: %s" % (where, key, exc)))
    if force_verify or cfg.verify_and_map:
        cfg.verify = True
    errors.extend(_check_files(cfg, where, position, client_side, dial_only))
    if errors:
        raise ConfigError(errors)
    return cfg


def _pinned_certs(value):
    if not isinstance(value, list):
        raise ValueError("expected 'pinned_certs' to be a list of hex-encoded sha256 of DER "
                         "encoded SubjectPublicKeyInfo")
    pins = set()
    for entry in value:
        entry = str(entry).lower()
        if not _PIN.match(entry):
            raise ValueError("'pinned_certs' key %s does not look like hex-encoded sha256 of "
                             "DER encoded SubjectPublicKeyInfo" % entry)
        pins.add(entry)
    return frozenset(pins) or None  # an empty list pins nothing, as Go


def _cipher_suites(value):
    if not isinstance(value, list) or not value:
        raise ValueError("'cipher_suites' cannot be empty")
    names = []
    for name in value:
        if name not in CIPHERS:
            raise ValueError("unrecognized cipher %s" % name)
        if CIPHERS[name]:
            names.append(CIPHERS[name])
    return ":".join(names) or None


def _curve_preferences(value):
    if not isinstance(value, list) or not value:
        raise ValueError("'curve_preferences' cannot be empty")
    for name in value:
        if name not in CURVES:
            raise ValueError("unrecognized curve preference %s" % name)
    # Python's ssl sets one curve for the key exchange: the first one it can.
    usable = [CURVES[name] for name in value if CURVES[name]]
    return usable[0] if usable else None


def peer_key_id(tls_sock):
    """Hex SHA-256 of the peer certificate's DER SubjectPublicKeyInfo (what
    ``pinned_certs`` lists, as nats-server ``matchesPinnedCert``); None
    without a peer certificate."""
    der = tls_sock.getpeercert(binary_form=True)
    if not der:
        return None
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    spki = x509.load_der_x509_certificate(der).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def _check_files(cfg, where, position, client_side=False, dial_only=False):
    errors = []
    if dial_only and not cfg.cert_file and not cfg.key_file:
        try:
            cfg.check(server_side=False, client_side=True)
        except (OSError, ssl.SSLError) as exc:
            errors.append((position("ca_file"), "%s: error loading certificates: %s"
                           % (where, exc)))
        return errors
    if not cfg.cert_file:
        errors.append((position("key_file") if cfg.key_file else position("cert_file"),
                       "%s: missing 'cert_file' in TLS configuration" % where))
    elif not cfg.key_file:
        errors.append((position("cert_file"), "%s: missing 'key_file' in TLS configuration"
                       % where))
    if errors:
        return errors
    try:
        cfg.check(server_side=True, client_side=client_side)
    except (OSError, ssl.SSLError) as exc:
        key = "ca_file" if cfg.ca_file and "verify" in str(exc).lower() else "cert_file"
        errors.append((position(key), "%s: error loading certificates: %s" % (where, exc)))
    return errors


def apply_tls_flags(current, args):
    """nats-server's ``--tls --tlscert --tlskey --tlscacert --tlsverify`` on top
    of the config file's top-level block (``current``, a TLSConfig or None).
    Returns the resulting TLSConfig or None; bad combinations raise ConfigError."""
    if args is None:
        return current
    get = lambda name: getattr(args, name, None)  # noqa: E731
    cert, key, ca = get("tlscert"), get("tlskey"), get("tlscacert")
    enable, verify = get("tls"), get("tlsverify")
    if not (enable or verify or cert or key or ca):
        return current
    cfg = TLSConfig() if current is None else TLSConfig(**{
        "cert_file": current.cert_file, "key_file": current.key_file,
        "ca_file": current.ca_file, "verify": current.verify, "timeout": current.timeout,
        "handshake_first": current.handshake_first, "min_version": current.min_version,
        "verify_and_map": current.verify_and_map})
    if current is not None:
        cfg.first_fallback = current.first_fallback
    if cert:
        cfg.cert_file = cert
    if key:
        cfg.key_file = key
    if ca:
        cfg.ca_file = ca
    if verify:
        cfg.verify = True
    if current is None and not (enable or verify):
        # As nats-server: certificate flags alone do not turn TLS on.
        return None
    errors = _check_files(cfg, "--tls", lambda key: None)
    if errors:
        raise ConfigError(errors)
    return cfg


def handshake(sock, context, timeout, server_side=True, hostname=None, pinned=None):
    """Wrap ``sock`` (a gevent socket) and complete the handshake within
    ``timeout`` seconds; with ``pinned`` (a set of key ids), the peer's
    certificate must be one of them. Returns the SSL socket (which now owns
    the file descriptor); raises TLSHandshakeError."""
    import gevent

    try:
        tls_sock = context.wrap_socket(sock, server_side=server_side,
                                       do_handshake_on_connect=False,
                                       server_hostname=None if server_side else hostname)
    except (OSError, ValueError) as exc:
        raise TLSHandshakeError(str(exc)) from exc
    timer = gevent.Timeout(timeout)
    timer.start()
    try:
        tls_sock.do_handshake()
    except gevent.Timeout as exc:
        if exc is not timer:
            raise
        _close(tls_sock)
        raise TLSHandshakeError("TLS handshake timeout") from None
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        _close(tls_sock, drain=True)
        raise TLSHandshakeError(str(exc)) from exc
    finally:
        timer.close()
    if pinned is not None and peer_key_id(tls_sock) not in pinned:
        _close(tls_sock)
        raise TLSHandshakeError("certificate not pinned")
    return tls_sock


def _close(sock, drain=False):
    """Close; with ``drain``, first read what the peer already sent (without
    blocking) and send FIN, so the TLS alert just written is not overtaken by
    a reset (which the peer would report instead of the alert)."""
    raw = getattr(sock, "_sock", None)
    if drain and raw is not None:
        try:
            for _ in range(16):
                if not raw.recv(65536):
                    break
        except OSError:  # BlockingIOError: nothing more buffered
            pass
        try:
            raw.shutdown(2)
        except OSError:
            pass
    try:
        sock.close()
    except OSError:
        pass
