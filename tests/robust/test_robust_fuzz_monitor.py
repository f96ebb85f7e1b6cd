"""Fuzzing the monitoring HTTP requests (issue 18): seeded hypothesis requests
(endpoints, parameters, headers, broken request lines) to the -m port. Every
answer is an HTTP status that is not a server error, the log stays clean and
small, clients keep being served."""

import re

from hypothesis import strategies as st

from pluggy_nats.testing import fuzz

PATHS = ["/", "/varz", "/connz", "/subsz", "/subscriptionsz", "/accountz", "/accstatz",
         "/healthz", "/routez", "/gatewayz", "/leafz", "/jsz", "/nope", "//varz", "/connz/",
         "/varz/../connz", "/%ff", "/\xe9"]
PARAMS = ["sort", "limit", "offset", "subs", "auth", "state", "cid", "user", "acc", "callback",
          "test", "accs", "unused", "js-enabled-only", "details", "mqtt_client", "x"]
VALUES = st.one_of(
    st.sampled_from(["", "0", "1", "-1", "99999999999999999999", "true", "detail", "closed", "all",
                     "stop", "reason", "cid", "bytes_to", "idle", "foo.*", "a..b", "fn",
                     "alert(1)", "%00", "%ff", "x" * 300]),
    st.text(max_size=6).map(lambda t: t.replace(" ", "+").replace("&", "%26")))


@st.composite
def requests(draw):
    method = draw(st.sampled_from(["GET", "GET", "GET", "POST", "HEAD", "DELETE", "G ET", ""]))
    path = draw(st.sampled_from(PATHS))
    params = draw(st.lists(st.tuples(st.sampled_from(PARAMS), VALUES), max_size=4))
    if params:
        path += "?" + "&".join("%s=%s" % kv for kv in params)
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/2", "", "HTTP/x"]))
    headers = ["Host: 127.0.0.1"] if draw(st.integers(0, 4)) else []
    headers += ["H%d: v" % i for i in range(draw(st.sampled_from([0, 0, 1, 99, 101, 150])))]
    if draw(st.integers(0, 6)) == 0:
        headers.append(draw(st.sampled_from(["Content-Length: 5", "Content-Length: -1",
                                             "Transfer-Encoding: chunked", "bad header",
                                             "Expect: 100-continue"])))
    request = ("%s %s %s" % (method, path, version)).encode("utf-8", "surrogateescape")
    data = request + b"\r\n" + "".join(h + "\r\n" for h in headers).encode() + b"\r\n"
    if draw(st.integers(0, 8)) == 0:
        data = data[:draw(st.integers(0, len(data)))] + draw(st.binary(max_size=8))
    return data


_STATUS = re.compile(rb"^HTTP/1\.[01] (\d{3})")
EXAMPLES = 200


def _answered(data, reply):
    if not reply:
        return  # nothing to answer (an empty or cut request): closed
    m = _STATUS.match(reply)
    assert m, "not an HTTP answer to %r: %r" % (data, reply[:200])
    assert not m.group(1).startswith(b"5") or m.group(1) == b"503", (data, reply[:300])


def test_fuzz_monitor_http(make_server):
    server = make_server("-m", "-1")
    target = fuzz.WireTarget(server.logfile, "127.0.0.1", server.http_port, read_info=False,
                             check=_answered, sentinel_port=server.port)
    too_many = b"GET /varz HTTP/1.1\r\n" + b"H: v\r\n" * 101 + b"\r\n"
    stats = fuzz.run(target, requests(), EXAMPLES, seed_value=8222, explicit=[too_many])
    assert stats.examples == 1 + fuzz.examples(EXAMPLES)
