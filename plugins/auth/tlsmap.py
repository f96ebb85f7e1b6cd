"""``tls { verify_and_map: true }``: the client certificate names the user
(nats-server ``auth.go`` checkClientTLSCertSubject and the client tlsMap
callback).

The names tried, in nats-server's order, against the ``users`` list:

1. every email address in the subjectAltName, then every DNS name, then every
   URI;
2. the subject as a distinguished name, compared with each user name parsed as
   a DN: equal RDN by RDN, or else the same RDNs in another order;
3. the subject as Go's ``pkix.RDNSequence.String()`` writes it (RFC 2253:
   last RDN first, ``CN=``/``O=``/... with ``,+"\\<>;`` escaped), first with
   the domain components appended (``,DC=...``) when there are any, then as is.

The certificate comes from ``getpeercert()``, which the ssl module fills once
the chain is verified (verify_and_map implies verify), so the auth plugin needs
no X.509 library.
"""

# OpenSSL's long names (what getpeercert() says) -> Go's short names. Types Go
# has no name for are written as a dotted OID and the hex DER of the value.
_GO_NAMES = {
    "countryName": "C", "organizationName": "O", "organizationalUnitName": "OU",
    "commonName": "CN", "serialNumber": "SERIALNUMBER", "localityName": "L",
    "stateOrProvinceName": "ST", "streetAddress": "STREET", "postalCode": "POSTALCODE",
}
_OIDS = {
    "domainComponent": ("0.9.2342.19200300.100.1.25", 0x16),  # IA5String
    "emailAddress": ("1.2.840.113549.1.9.1", 0x16),
    "userId": ("0.9.2342.19200300.100.1.1", 0x0C),  # UTF8String
    "title": ("2.5.4.12", 0x0C),
    "givenName": ("2.5.4.42", 0x0C),
    "surname": ("2.5.4.4", 0x0C),
}
# The short names a configured DN may use (ldap.ParseDN accepts any attribute type).
_DN_ALIASES = {"dc": "domaincomponent", "cn": "commonname", "o": "organizationname",
               "ou": "organizationalunitname", "c": "countryname", "l": "localityname",
               "st": "stateorprovincename", "street": "streetaddress",
               "postalcode": "postalcode", "serialnumber": "serialnumber",
               "uid": "userid", "emailaddress": "emailaddress"}
_ESCAPE = ',+"\\<>;'


def enabled(server):
    tls = server.options.tls
    return tls is not None and getattr(tls, "verify_and_map", False)


def mapped_user(conn, users):
    """The User (from ``users``, name -> User) the peer certificate of ``conn``
    names, or None."""
    try:
        cert = conn.sock.getpeercert()
    except (AttributeError, ValueError, OSError):
        return None
    if not cert:
        return None
    sans = cert.get("subjectAltName", ())
    for kind in ("email", "DNS", "URI"):
        for san_kind, value in sans:
            if san_kind == kind and value in users:
                return users[value]
    rdns = [tuple(rdn) for rdn in cert.get("subject", ())]
    if not rdns:
        return None
    cert_dn = [frozenset((_canon(k), v) for k, v in rdn) for rdn in rdns]
    parsed = []
    for name, user in users.items():
        dn = parse_dn(name)
        if dn is None:
            continue
        if dn == cert_dn[::-1]:  # a DN string lists the last RDN first
            return user
        parsed.append((dn, user))
    for dn, user in parsed:
        if sorted(dn, key=sorted) == sorted(cert_dn, key=sorted):
            return user
    text = rdn_string(rdns)
    dcs = ",".join("DC=" + v for rdn in rdns for k, v in rdn if k == "domainComponent")
    for candidate in ((text + "," + dcs) if dcs else None, text):
        if candidate and candidate in users:
            return users[candidate]
    return None


def rdn_string(rdns):
    """Go's ``pkix.RDNSequence.String()`` of getpeercert()'s subject."""
    parts = []
    for rdn in reversed(rdns):
        parts.append("+".join(_atv(k, v) for k, v in rdn))
    return ",".join(parts)


def _atv(key, value):
    name = _GO_NAMES.get(key)
    if name is not None:
        return "%s=%s" % (name, _escape(value))
    oid, tag = _OIDS.get(key, (key, 0x0C))
    raw = value.encode()
    return "%s=#%s" % (oid, (bytes([tag]) + _der_length(len(raw)) + raw).hex())


def _der_length(n):
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _escape(value):
    out = []
    last = len(value) - 1
    for i, ch in enumerate(value):
        if ch in _ESCAPE or (ch == " " and i in (0, last)) or (ch == "#" and i == 0):
            out.append("\\")
        out.append(ch)
    return "".join(out)


def _canon(key):
    key = key.lower()
    return _DN_ALIASES.get(key, key)


def parse_dn(text):
    """A DN string (``CN=x, O=y+OU=z``) as a list of RDN sets of (type, value),
    or None when it is not one. Types are compared case-insensitively and by
    alias (``CN`` = ``commonName``), values exactly, as ldap.DN.Equal does."""
    rdns, current, key, buf = [], set(), None, []
    i = 0
    while i <= len(text):
        ch = text[i] if i < len(text) else None
        if ch == "\\" and i + 1 < len(text):
            buf.append(text[i + 1])
            i += 2
            continue
        if ch == "=" and key is None:
            key = "".join(buf).strip()
            buf = []
        elif ch in (",", "+", ";", None):
            if key is None or not key:
                return None
            current.add((_canon(key), "".join(buf).strip()))
            key, buf = None, []
            if ch != "+":
                rdns.append(frozenset(current))
                current = set()
        else:
            buf.append(ch)
        i += 1
    return rdns or None
