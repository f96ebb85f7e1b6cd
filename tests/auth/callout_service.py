"""A real auth callout service for the tests: nats-py, in a thread with its own
asyncio loop, connected as one of the ``auth_users``. It answers
``$SYS.REQ.USER.AUTH`` requests by the ``user`` in their connect_opts (see
:data:`POLICY`), decoding each request with our JWT codec, so the Go server's
requests prove the wire format as much as ours.
"""

import asyncio
import threading

import nats

from pluggy_nats import jwt, xkeys

ISSUER = jwt.new_keypair("A")  # the callout's account key (config: issuer)
OTHER = jwt.new_keypair("A")  # an account key the server does not trust
ISSUER_PUB = ISSUER.public_key.decode()
SERVICE_XKEY = xkeys.CurveKey()  # config: xkey (requests are sealed to it)

# user -> (password, what to answer)
POLICY = {
    "alice": ("alice-pw", {"aud": "APP", "nats": {
        "pub": {"allow": ["app.>"]}, "sub": {"allow": ["app.>", "_INBOX.>"]}}}),
    "bob": ("bob-pw", {"aud": "APP", "nats": {}}),
    "gina": ("gina-pw", {"aud": "$G", "nats": {"pub": {"deny": ["secret.>"]}}}),
    "rita": ("rita-pw", {"aud": "APP", "nats": {  # a responder: allow_responses only
        "pub": {"allow": ["nothing.here"]}, "sub": {"allow": ["svc.>"]}, "resp": {"max": 1}}}),
    "erin": ("erin-pw", "error"),  # the service says no, with a reason
    "ivan": ("ivan-pw", "other-issuer"),  # user JWT signed by an untrusted key
    "nick": ("nick-pw", "wrong-nkey"),  # user JWT for another nkey
    "una": ("una-pw", {"aud": "NOPE", "nats": {}}),  # an account that does not exist
    "sam": ("sam-pw", "silent"),  # never answers: the server times out
    "eve": ("eve-pw", "empty"),  # an empty reply
    "gary": ("gary-pw", "garbage"),  # not a JWT at all
    "uma": ("uma-pw", "user-jwt-only"),  # a user JWT where the response JWT belongs
    "rex": ("rex-pw", "wrong-audience"),  # response addressed to another server
}


def user_jwt(user_nkey, name, claims, key=ISSUER):
    body = {"sub": user_nkey, "name": name, "aud": claims["aud"],
            "nats": dict({"type": "user", "version": 2, "subs": -1, "data": -1,
                          "payload": -1}, **claims["nats"])}
    return jwt.encode(body, key)


def answer(request_token):
    """The response payload (bytes) for one request JWT, or None to stay silent."""
    req = jwt.decode(request_token, expect_type="authorization_request")
    nats_claims = req["nats"]
    user_nkey = nats_claims["user_nkey"]
    server_id = nats_claims["server_id"]["id"]
    opts = nats_claims["connect_opts"]
    name = opts.get("user", "")
    password, what = POLICY.get(name, (None, "error"))
    if password is None or opts.get("pass") != password:
        what = "error"
    if what == "silent":
        return None
    if what == "empty":
        return b""
    if what == "garbage":
        return b"eyJ-this-is-not-a-jwt"
    if what == "user-jwt-only":
        return user_jwt(user_nkey, name, {"aud": "APP", "nats": {}}).encode()
    response = {"sub": user_nkey, "aud": server_id,
                "nats": {"type": "authorization_response", "version": 2}}
    if what == "error":
        response["nats"]["error"] = "bad credentials for %r" % name
    elif what == "other-issuer":
        response["nats"]["jwt"] = user_jwt(user_nkey, name, {"aud": "APP", "nats": {}}, OTHER)
    elif what == "wrong-nkey":
        other = jwt.new_keypair("U").public_key.decode()
        response["nats"]["jwt"] = user_jwt(other, name, {"aud": "APP", "nats": {}})
    elif what == "wrong-audience":
        response["aud"] = jwt.new_keypair("N").public_key.decode()
        response["nats"]["jwt"] = user_jwt(user_nkey, name, {"aud": "APP", "nats": {}})
    else:
        response["nats"]["jwt"] = user_jwt(user_nkey, name, what)
    return jwt.encode(response, ISSUER).encode()


class CalloutService:
    """Start with ``start(url)``; ``requests`` collects the decoded requests."""

    def __init__(self, user="auth", password="auth-pw", **connect_options):
        self.user = user
        self.password = password
        self.connect_options = connect_options  # more nats.connect() arguments (tls)
        self.requests = []
        self.sealed = []  # per request: whether it came sealed (xkey)
        self.errors = []
        self._loop = None
        self._thread = None
        self._ready = threading.Event()
        self._stop = None

    def start(self, url, timeout=10.0):
        self._thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("callout service did not start: %r" % self.errors)
        if self.errors:
            raise RuntimeError("callout service failed: %r" % self.errors)
        return self

    def stop(self):
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def _run(self, url):
        try:
            asyncio.run(self._main(url))
        except Exception as exc:  # reported to the test through start()/errors
            self.errors.append(repr(exc))
            self._ready.set()

    async def _main(self, url):
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        nc = await nats.connect(url, user=self.user, password=self.password,
                                allow_reconnect=False, **self.connect_options)

        async def on_request(msg):
            server_xkey = (msg.headers or {}).get("Nats-Server-Xkey")
            try:
                data = SERVICE_XKEY.open(msg.data, server_xkey) if server_xkey else msg.data
                token = data.decode()
                self.requests.append(jwt.decode(token, expect_type="authorization_request"))
                self.sealed.append(bool(server_xkey))
                payload = answer(token)
                if payload and server_xkey:  # answer sealed the other way
                    payload = SERVICE_XKEY.seal(payload, server_xkey)
            except Exception as exc:
                self.errors.append(repr(exc))
                return
            if payload is not None:
                await nc.publish(msg.reply, payload)

        await nc.subscribe("$SYS.REQ.USER.AUTH", cb=on_request)
        await nc.flush()
        self._ready.set()
        await self._stop.wait()
        await nc.close()
