"""Reading ``authorization {}``, ``accounts {}``, ``no_auth_user``,
``system_account`` and the ``--user/--pass/--auth`` flags into an
:class:`AuthConfig`, with nats-server's checks and error texts (``opts.go``
parseAuthorization, parseUsers, parseUserPermissions, parseAccounts).

Every problem is collected as ``(Position or None, message)``; the caller
raises them together.
"""

import re

from pluggy_nats.accounts.exports import (  # noqa: F401 (the auth plugin's names for them)
    CHUNKED,
    DEFAULT_RESPONSE_THRESHOLD,
    RESPONSE_TYPES,
    SINGLETON,
    STREAMED,
    ServiceExport,
    ServiceImport,
    StreamExport,
    StreamImport,
)
from pluggy_nats.conf import parse_duration
from pluggy_nats.mappings import parse_mappings
from pluggy_nats.permissions import (
    DEFAULT_RESPONSE_EXPIRES,
    DEFAULT_RESPONSE_MAX,
    PermissionSpec,
    ResponsePermission,
    SubjectPermission,
    split_subject_queue,
)
from pluggy_nats.signatures import is_valid_user_key, verify_key
from pluggy_nats.subjects import is_literal, is_valid_queue, is_valid_subject, subset_match

from . import operator as operator_mode
from .callout_config import parse_callout

BCRYPT = re.compile(r"^\$2[abxy]\$\d{2}\$")
CONNECTION_TYPES = frozenset(("STANDARD", "WEBSOCKET", "LEAFNODE", "LEAFNODE_WS", "MQTT",
                              "MQTT_WS", "IN_PROCESS"))
GLOBAL_ACCOUNT = "$G"
ACCOUNT_KEYS = frozenset(("nkey", "users", "default_permissions", "imports", "exports",
                          "jetstream", "mappings", "maps", "limits", "msg_trace", "trace_dest"))


def is_bcrypt(secret):
    return bool(secret) and BCRYPT.match(secret) is not None


class User:
    """One configured identity: a user/password or an nkey."""

    __slots__ = ("name", "password", "nkey", "verify_key", "spec", "permissions", "account",
                 "connection_types", "proxy_required")

    def __init__(self, name=None, password="", nkey=None):
        self.name = name
        self.password = password
        self.nkey = nkey
        self.verify_key = None
        self.spec = None  # PermissionSpec or None
        self.permissions = None  # CompiledPermissions or None
        self.account = None  # account name; None = the global account
        self.connection_types = None  # frozenset, None = any
        self.proxy_required = False

    @property
    def ident(self):
        return self.nkey or self.name

    def __repr__(self):
        return "User(%r, account=%r)" % (self.ident, self.account)


# nats-server's account limits block keys (opts.go parseAccountLimits); the
# names on the right are the ones the core reads from ``account.limits``.
LIMIT_KEYS = {"max_connections": "max_connections", "max_conn": "max_connections",
              "max_subscriptions": "max_subscriptions", "max_subs": "max_subscriptions",
              "max_payload": "max_payload", "max_pay": "max_payload",
              "max_leafnodes": "max_leafnodes", "max_leafs": "max_leafnodes"}


class AccountSpec:
    __slots__ = ("name", "conf", "users", "stream_exports", "stream_imports",
                 "service_exports", "service_imports", "default_spec", "mappings", "limits")

    def __init__(self, name, conf):
        self.name = name
        self.conf = conf
        self.users = []
        self.stream_exports = []
        self.stream_imports = []
        self.service_exports = []
        self.service_imports = []
        self.default_spec = None
        self.mappings = []  # pluggy_nats.mappings.Mapping
        self.limits = {}


class AuthConfig:
    def __init__(self):
        self.user = ""  # the single user of authorization {user, password} / --user
        self.password = ""
        self.token = ""
        self.timeout = None  # seconds, None = the core default
        self.users = {}  # name -> User
        self.nkeys = {}  # public key -> User
        self.no_auth_user = None
        self.accounts = {}  # name -> AccountSpec
        self.system_account = None
        self.has_users_array = False
        self.auth_callout = None  # a CalloutConfig (callout_config.py)
        self.operator = None  # operator.OperatorConfig in operator mode

    @property
    def operator_mode(self):
        return self.operator is not None and bool(self.operator.operators)

    @property
    def auth_required(self):
        return bool(self.users or self.nkeys or self.user or self.token or self.operator_mode)

    @property
    def plaintext(self):
        if self.password and not is_bcrypt(self.password):
            return True
        return any(u.nkey is None and not is_bcrypt(u.password) for u in self.users.values())


class Parser:
    def __init__(self, errors, warnings):
        self.errors = errors
        self.warnings = warnings

    # -- helpers -----------------------------------------------------------------

    def err(self, m, key, msg):
        getpos = getattr(m, "position", None)
        self.errors.append((getpos(key) if getpos and key is not None else None, msg))

    def unknown(self, m, key, msg=None):
        if key in getattr(m, "used_variables", ()):
            return  # a variable referenced as $NAME elsewhere, as nats-server
        self.err(m, key, msg or "unknown field %r" % key)

    def string(self, m, key):
        v = m[key]
        if isinstance(v, str):
            return v
        self.err(m, key, "%s: expected a string, got %r" % (key, v))
        return None

    # -- authorization {} ---------------------------------------------------------

    def authorization(self, m, cfg):
        if not isinstance(m, dict):
            self.errors.append((None, "authorization: expected a map"))
            return
        users_seen = False
        default_spec = None
        users = []
        for key in m:
            k = key.lower()
            if k in ("user", "username"):
                cfg.user = self.string(m, key) or ""
            elif k in ("pass", "password"):
                cfg.password = self.string(m, key) or ""
            elif k == "token":
                cfg.token = self.string(m, key) or ""
            elif k == "timeout":
                v = m[key]
                if isinstance(v, bool) or not isinstance(v, (int, float, str)):
                    self.err(m, key, "error parsing authorization config, 'timeout' wrong type")
                    continue
                try:
                    cfg.timeout = parse_duration(v)
                except ValueError as exc:
                    self.err(m, key, "error parsing authorization config, 'timeout' %s" % exc)
            elif k == "users":
                users_seen = True
                users = self.users(m, key)
            elif k in ("default_permission", "default_permissions", "permissions"):
                default_spec = self.permissions(m, key)
            elif k == "auth_callout":
                cfg.auth_callout = parse_callout(self, m, key)
            else:
                self.unknown(m, key)
        if (cfg.user or cfg.password) and cfg.token:
            self.err(m, None, "Cannot have a user/pass and token")
        if users_seen or cfg.users or cfg.nkeys:
            if cfg.user:
                self.errors.append((None, "Can not have a single user/pass and a users array"))
            if cfg.token:
                self.errors.append((None, "Can not have a token and a users array"))
        cfg.has_users_array = cfg.has_users_array or users_seen
        for u in users:
            if u.spec is None:
                u.spec = default_spec
            self.add_user(cfg, u, m)

    def add_user(self, cfg, u, m=None):
        if u.nkey:
            if u.nkey in cfg.nkeys:
                self.errors.append((None, "Duplicate nkey %r detected" % u.nkey))
                return
            cfg.nkeys[u.nkey] = u
        else:
            if u.name in cfg.users:
                self.errors.append((None, "Duplicate user %r detected" % u.name))
                return
            cfg.users[u.name] = u

    def users(self, m, key):
        lst = m[key]
        if not isinstance(lst, list):
            self.err(m, key, "Expected users field to be an array, got %r" % (lst,))
            return []
        out = []
        for um in lst:
            if not isinstance(um, dict):
                self.err(m, key, "Expected user entry to be a map/struct, got %r" % (um,))
                continue
            u = self.user(um)
            if u is not None:
                out.append(u)
        return out

    def user(self, um):
        u = User()
        last = None
        for key in um:
            k = key.lower()
            last = key
            if k == "nkey":
                u.nkey = self.string(um, key)
            elif k in ("user", "username"):
                u.name = self.string(um, key)
            elif k in ("pass", "password"):
                u.password = self.string(um, key) or ""
            elif k in ("permission", "permissions", "authorization"):
                u.spec = self.permissions(um, key)
            elif k in ("allowed_connection_types", "connection_types", "clients"):
                v = um[key]
                types = [v] if isinstance(v, str) else v
                if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
                    self.err(um, key, "%s: expected a list of connection types" % key)
                    continue
                bad = [t for t in types if t.upper() not in CONNECTION_TYPES]
                if bad:
                    self.err(um, key, "invalid connection types [%s]"
                             % " ".join('"%s"' % t for t in bad))
                    continue
                u.connection_types = frozenset(t.upper() for t in types) or None
            elif k == "proxy_required":
                u.proxy_required = bool(um[key])
            else:
                self.unknown(um, key)
        if not u.nkey and not u.name:
            self.err(um, last, "User entry requires a user")
            return None
        if u.nkey:
            if u.name or u.password:
                self.err(um, last, "Nkey users do not take usernames or passwords")
                return None
            if not is_valid_user_key(u.nkey):
                self.err(um, "nkey", "Not a valid public nkey for a user")
                return None
            u.verify_key = verify_key(u.nkey)
        return u

    # -- permissions {} --------------------------------------------------------------

    def permissions(self, m, key):
        pm = m[key]
        if not isinstance(pm, dict):
            self.err(m, key, "Expected permissions to be a map/struct, got %r" % (pm,))
            return None
        spec = PermissionSpec()
        for k in pm:
            lk = k.lower()
            if lk in ("pub", "publish", "import"):
                spec.publish = self.subject_permission(pm, k, queues=False)
            elif lk in ("sub", "subscribe", "export"):
                spec.subscribe = self.subject_permission(pm, k, queues=True)
            elif lk in ("publish_allow_responses", "allow_responses"):
                spec.response = self.allow_responses(pm, k)
            else:
                self.unknown(pm, k, "Unknown field %r parsing permissions" % k)
        return spec

    def subject_permission(self, m, key, queues):
        v = m[key]
        if isinstance(v, dict):
            if not v:
                return None
            sp = SubjectPermission()
            for k in v:
                lk = k.lower()
                if lk == "allow":
                    sp.allow = self.subjects(v, k, queues)
                elif lk == "deny":
                    sp.deny = self.subjects(v, k, queues)
                else:
                    self.unknown(v, k, "Unknown field name %r parsing subject permissions, "
                                       "only 'allow' or 'deny' are permitted" % k)
            return sp
        return SubjectPermission(allow=self.subjects(m, key, queues))

    def subjects(self, m, key, queues):
        """A subject or a list of them. An empty list counts as absent (None),
        as nats-server's parseSubjects."""
        v = m[key]
        items = [v] if isinstance(v, str) else v
        if not isinstance(items, list):
            self.err(m, key, "Expected subject permissions to be a subject, or array of "
                             "subjects, got %r" % (v,))
            return None
        out = []
        for s in items:
            if not isinstance(s, str):
                self.err(m, key, "Subject in permissions array cannot be cast to string")
                return None
            if not self.valid_permission_subject(s, queues):
                self.err(m, key, "subject %r is not a valid subject" % s)
                return None
            out.append(s)
        return out or None

    @staticmethod
    def valid_permission_subject(s, queues):
        if not queues:
            return is_valid_subject(s.encode())
        try:
            subject, queue = split_subject_queue(s)
        except ValueError:
            return False
        return is_valid_subject(subject.encode()) and (queue is None
                                                        or is_valid_queue(queue.encode()))

    def allow_responses(self, m, key):
        v = m[key]
        if isinstance(v, bool):
            return ResponsePermission() if v else None
        if not isinstance(v, dict):
            self.err(m, key, "error parsing response permissions, expected a boolean or a map")
            return None
        rp = ResponsePermission(DEFAULT_RESPONSE_MAX, DEFAULT_RESPONSE_EXPIRES)
        for k in v:
            lk = k.lower()
            if lk in ("max", "max_msgs", "max_messages", "max_responses"):
                n = v[k]
                if isinstance(n, bool) or not isinstance(n, int):
                    self.err(v, k, "error parsing max responses, expected an integer")
                    continue
                if n != 0:
                    rp.max = n
            elif lk in ("expires", "expiration", "ttl"):
                d = v[k]
                if not isinstance(d, str):
                    self.err(v, k, "error parsing expires, not a duration string")
                    continue
                try:
                    seconds = parse_duration(d)
                except ValueError as exc:
                    self.err(v, k, "error parsing expires: %s" % exc)
                    continue
                if seconds != 0:
                    rp.expires = seconds
            else:
                self.unknown(v, k, "Unknown field %r parsing permissions" % k)
        return rp

    # -- accounts {} ---------------------------------------------------------------------

    def accounts(self, m, cfg):
        if not isinstance(m, dict):
            self.errors.append((None, "Expected map entries for accounts"))
            return
        for name in m:
            am = m[name]
            if name == GLOBAL_ACCOUNT:
                self.err(m, name, '"%s" is a Reserved Account' % name)
                continue
            if isinstance(am, list) and not am:
                am = {}
            if not isinstance(am, dict):
                self.err(m, name, "Expected map entries for accounts")
                continue
            acc = cfg.accounts[name] = AccountSpec(name, am)
            users = []
            for key in am:
                k = key.lower()
                if k == "users":
                    users = self.users(am, key)
                    cfg.has_users_array = True
                elif k == "default_permissions":
                    acc.default_spec = self.permissions(am, key)
                elif k == "exports":
                    self.exports(am, key, acc)
                elif k == "imports":
                    self.imports(am, key, acc)
                elif k in ("mappings", "maps"):
                    acc.mappings = parse_mappings(am[key], self.errors,
                                                  getattr(am[key], "position", None))
                elif k == "limits":
                    self.limits(am, key, acc)
                elif k not in ACCOUNT_KEYS:
                    self.unknown(am, key)
            for u in users:
                u.account = name
                if u.spec is None:
                    u.spec = acc.default_spec
                acc.users.append(u)
                self.add_user(cfg, u)

    def limits(self, m, key, acc):
        lm = m[key]
        if not isinstance(lm, dict):
            self.err(m, key, "Expected account limits to be a map/struct, got %s" % (lm,))
            return
        for k in lm:
            name = LIMIT_KEYS.get(k.lower())
            if name is None:
                self.unknown(lm, k, "Unknown field %s parsing account limits" % _q(k))
                continue
            v = lm[k]
            if isinstance(v, bool) or not isinstance(v, int):
                self.err(lm, k, "%s: expected an integer, got %r" % (k, v))
                continue
            acc.limits[name] = v

    def exports(self, m, key, acc):
        lst = m[key]
        if not isinstance(lst, list):
            self.err(m, key, "Exports should be an array, got %r" % (lst,))
            return
        for em in lst:
            if not isinstance(em, dict):
                self.err(m, key, "Export Items should be a map with type entry, got %r" % (em,))
                continue
            kind = subject = None
            accounts = None
            rtype, threshold = SINGLETON, DEFAULT_RESPONSE_THRESHOLD
            for k in em:
                lk = k.lower()
                if lk in ("stream", "service"):
                    if kind is not None:
                        self.err(em, k, "Detected %s but already saw a %s" % (lk, kind))
                        continue
                    kind = lk
                    subject = self.string(em, k)
                    if subject is not None and not is_valid_subject(subject.encode()):
                        self.err(em, k, "invalid %s export subject %r" % (lk, subject))
                        subject = None
                elif lk == "accounts":
                    v = em[k]
                    if not isinstance(v, list) or not all(isinstance(a, str) for a in v):
                        self.err(em, k, "accounts: expected a list of account names")
                        continue
                    accounts = list(v)
                elif lk in ("response", "response_type"):
                    v = em[k]
                    if not isinstance(v, str):
                        self.err(em, k, "Expected response type to be string, got %r" % (v,))
                    elif v.lower() not in RESPONSE_TYPES:
                        self.err(em, k, "Unknown response type: %s" % _q(v))
                    else:
                        rtype = RESPONSE_TYPES[v.lower()]
                    if kind == "stream":
                        self.err(em, k, "Detected response directive on non-service")
                elif lk in ("threshold", "response_threshold", "response_max_time",
                            "response_time"):
                    v = em[k]
                    try:
                        threshold = parse_duration(v) if isinstance(v, str) else None
                    except ValueError:
                        threshold = None
                    if threshold is None:
                        threshold = DEFAULT_RESPONSE_THRESHOLD
                        self.err(em, k, "Expected response threshold to be a parseable time "
                                        "duration, got %s" % _q(str(v)))
                    if kind == "stream":
                        self.err(em, k, "Detected response directive on non-service")
                elif lk in ("latency", "allow_trace", "account_token_position", "advertise"):
                    pass
                else:
                    self.unknown(em, k)
            if kind is None:
                self.err(m, key, "Expected a stream or service export")
            elif subject is None:
                continue
            elif kind == "stream":
                acc.stream_exports.append(StreamExport(subject, accounts))
            else:
                acc.service_exports.append(ServiceExport(subject, accounts, rtype, threshold))

    def imports(self, m, key, acc):
        lst = m[key]
        if not isinstance(lst, list):
            self.err(m, key, "Imports should be an array, got %r" % (lst,))
            return
        for im in lst:
            if not isinstance(im, dict):
                self.err(m, key, "Import Items should be a map with type entry, got %r" % (im,))
                continue
            kind = src = subject = prefix = to = None
            for k in im:
                lk = k.lower()
                if lk in ("stream", "service"):
                    if kind is not None:
                        self.err(im, k, "Detected %s but already saw a %s" % (lk, kind))
                        continue
                    kind = lk
                    sm = im[k]
                    if not isinstance(sm, dict):
                        self.err(im, k, "%s entry should be an account map, got %r"
                                 % (lk.capitalize(), sm))
                        continue
                    for sk in sm:
                        lsk = sk.lower()
                        if lsk in ("account", "subject"):
                            val = self.string(sm, sk)
                            if lsk == "account":
                                src = val
                            else:
                                subject = val
                        else:
                            self.unknown(sm, sk)
                    if not src or not subject:
                        self.err(im, k, "Expect an account name and a subject")
                        kind = "bad"
                    elif not is_valid_subject(subject.encode()):
                        self.err(im, k, "invalid %s import subject %r" % (lk, subject))
                        kind = "bad"
                elif lk == "prefix":
                    prefix = self.string(im, k)
                elif lk == "to":
                    to = self.string(im, k)
                elif lk in ("share", "allow_trace"):
                    pass
                else:
                    self.unknown(im, k)
            if kind == "stream":
                acc.stream_imports.append(StreamImport(src, subject, prefix, to))
            elif kind == "service":
                imp = ServiceImport(src, subject, to)
                dup = next((i for i in acc.service_imports if i.to == imp.to), None)
                if dup is not None:
                    self.err(m, key, "Duplicate service import subject %s, previously used in "
                                     "import for account %s, subject %s"
                             % (_q(imp.to), _q(dup.account), _q(dup.subject)))
                    continue
                acc.service_imports.append(imp)
            elif kind is None:
                self.err(m, key, "Expected a stream or service import")


def build(conf, args, errors, warnings):
    """The AuthConfig from the parsed config file ``conf`` and the flags ``args``.
    Returns (AuthConfig, claimed top-level keys)."""
    cfg = AuthConfig()
    p = Parser(errors, warnings)
    claimed = []
    # accounts first, so the authorization users can be checked against them
    for key in conf:
        if key.lower() == "accounts":
            claimed.append(key)
            p.accounts(conf[key], cfg)
    for key in conf:
        lk = key.lower()
        if lk == "authorization":
            claimed.append(key)
            p.authorization(conf[key], cfg)
        elif lk in ("system_account", "system"):
            claimed.append(key)
            cfg.system_account = p.string(conf, key)
    if args is not None:
        # flags override the file, as nats-server's MergeOptions
        user = getattr(args, "auth_user", None)
        password = getattr(args, "auth_pass", None)
        token = getattr(args, "auth_token", None)
        if user:
            cfg.user = user
        if password:
            cfg.password = password
        if token:
            cfg.token = token
        if (user or password or token) and (cfg.user or cfg.password) and cfg.token:
            errors.append((None, "Cannot have a user/pass and token"))
        if (user or token) and (cfg.users or cfg.nkeys):
            errors.append((None, "Can not have a single user/pass or token and a users array"))
    cfg.operator, op_claimed = operator_mode.parse(conf, errors)
    claimed.extend(op_claimed)
    operator_mode.validate(cfg.operator, cfg, errors)
    for acc in cfg.accounts.values():
        _check_exports(acc, cfg, errors)
    for acc in cfg.accounts.values():
        _check_imports(acc, cfg, errors)
    if cfg.system_account and cfg.system_account not in cfg.accounts \
            and cfg.system_account != "$SYS" and not cfg.operator_mode:
        errors.append((None, "error resolving system account: account missing"))
    for u in list(cfg.users.values()) + list(cfg.nkeys.values()):
        if u.spec is not None:
            u.permissions = u.spec.compile()
    return cfg, claimed


def _check_imports(acc, cfg, errors):
    for imp in acc.stream_imports:
        src = cfg.accounts.get(imp.account)
        if src is None:
            errors.append((None, '"%s" account not defined for stream import' % imp.account))
            continue
        if src is acc:
            errors.append((None, 'Error adding stream import "%s": an account cannot import '
                                 'from itself' % imp.subject))
            continue
        ok = any(subset_match(imp.subject.encode(), e.subject.encode())
                 and (e.accounts is None or acc.name in e.accounts)
                 for e in src.stream_exports)
        if not ok:
            errors.append((None, 'Error adding stream import "%s": stream import not authorized'
                                 % imp.subject))
        if imp.to and (imp.prefix or not is_literal_str(imp.subject)
                       or not is_literal_str(imp.to)):
            errors.append((None, 'Error adding stream import "%s": "to" is only supported '
                                 'between literal subjects, without a prefix' % imp.subject))
    for imp in acc.service_imports:
        src = cfg.accounts.get(imp.account)
        if src is None:
            errors.append((None, '"%s" account not defined for service import' % imp.account))
            continue
        export = _service_export(src, acc.name, imp.subject)
        if export is None:
            errors.append((None, 'Error adding service import "%s": service import not '
                                 'authorized' % imp.subject))
            continue
        if _service_cycle(cfg, acc.name, src, imp.subject):
            errors.append((None, 'Error adding service import "%s": import forms a cycle'
                           % imp.subject))
            continue
        imp.export = export


def _check_exports(acc, cfg, errors):
    """Every account an export names must exist (opts.go parseAccounts)."""
    for kind, exports in (("stream", acc.stream_exports), ("service", acc.service_exports)):
        for e in exports:
            for name in e.accounts or ():
                if name not in cfg.accounts:
                    errors.append((None, '"%s" account not defined for %s export'
                                   % (name, kind)))


def _service_export(src, importer, subject):
    """The export of ``src`` that authorizes ``importer`` to import ``subject``
    (an exact subject first, then one that contains it), or None."""
    subj = subject.encode()
    exact = [e for e in src.service_exports if e.subject == subject]
    for e in exact or [e for e in src.service_exports if subset_match(subj, e.subject.encode())]:
        if e.accounts is None or importer in e.accounts:
            return e
        return None
    return None


def _service_cycle(cfg, importer, src, subject):
    """Whether following the service imports of ``src`` that overlap
    ``subject`` (only those already accepted) leads back to ``importer``."""
    seen = set()
    todo = [(src, subject.encode())]
    while todo:
        acc, subj = todo.pop()
        if acc.name in seen:
            continue
        seen.add(acc.name)
        for imp in acc.service_imports:
            if imp.export is None:
                continue
            to = imp.to.encode()
            if subset_match(to, subj) or subset_match(subj, to):
                if imp.account == importer:
                    return True
                nxt = cfg.accounts.get(imp.account)
                if nxt is not None:
                    todo.append((nxt, imp.subject.encode()))
    return False


def _q(s):
    return '"%s"' % s


def is_literal_str(s):
    return is_literal(s.encode())
