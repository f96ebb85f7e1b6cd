"""The /topology page, rendered by a real headless Chromium (Debian's
``chromium``) after its JavaScript ran: the servers and links it drew, the
details of a selected server; and a screenshot of the example system.

``PLUGGY_NATS_TOPOLOGY_SCREENSHOT=docs/topology.png`` writes the README's
screenshot there."""

import os
import re
import shutil
import subprocess
import urllib.request

import pytest

from .topology_helpers import get

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--virtual-time-budget=5000"]


def chromium():
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        reason = "needs Debian's chromium to render the page: apt-get install chromium"
        if os.environ.get("CI"):
            pytest.fail(reason + " (.ci/run installs it)")
        pytest.skip(reason)
    return binary


def render(url, *extra):
    proc = subprocess.run([chromium()] + FLAGS + list(extra) + [url], capture_output=True,
                          text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_page_draws_every_server_and_link(system):
    url = "http://127.0.0.1:%d/topology#server=go-A-1" % system["A0"].http_port
    dom = render(url, "--dump-dom")
    status = re.search(r'<span id="status"[^>]*>([^<]*)</span>', dom).group(1)
    assert status.startswith("4 servers, 3 leaf servers, 3 clusters, 8 links"), status
    names = set(re.findall(r'<g class="server[^"]*" data-id="[^"]*" data-name="([^"]*)"', dom))
    assert names == {"py-A-0", "go-A-1", "py-B-0", "LA", "LG", "TB", "J0"}
    edges = re.findall(r'<path class="edge (\w+)"', dom)
    assert sorted(edges) == ["gateway"] * 3 + ["leaf"] * 4 + ["route"]
    # J0 has no cluster: it hangs under its hub's cluster, as the leafs do
    assert set(re.findall(r'data-cluster="(\w*)"', dom)) == {"A", "B"}
    streams = dom[dom.index('id="streams"'):]
    assert "<td>APP/ORDERS_COPY</td><td>1</td><td>J0 (J0)</td><td>mirror of ORDERS</td>" \
        in streams, streams
    # the page refreshed at least twice (virtual time): every link has a rate
    rates = re.findall(r'<text class="rate"[^>]*>([^<]*)</text>', dom)
    assert len(rates) == 8 and all(r.endswith("/s") for r in rates), rates
    # the selected server's details, from its own (Go) answers
    assert re.search(r'<g class="server selected" data-id="[^"]*" data-name="go-A-1"', dom)
    details = dom[dom.index('id="details"'):dom.index('id="streams"')]
    assert "go-A-1" in details and "nats-server" in details
    assert re.search(r"<td>leaf in</td><td>LG \[APP\]</td>", details), details


def test_page_explains(system):
    """``#explain=ACCOUNT/SUBJECT`` (or the form) shows /explainz on the page."""
    url = "http://127.0.0.1:%d/topology#explain=APP/nobody.here" % system["A0"].http_port
    dom = render(url, "--dump-dom")
    box = dom[dom.index('id="explanation"'):dom.index('id="details"')]
    assert "APP nobody.here published on py-A-0" in box, box
    assert "<li>receives: nobody</li>" in box
    assert "py-A-0 gateway cluster B: gateway to cluster B is Interest-Only" in box
    assert 'class="server receives"' not in dom


def test_page_screenshot(system, tmp_path):
    target = os.environ.get("PLUGGY_NATS_TOPOLOGY_SCREENSHOT") or str(tmp_path / "topology.png")
    url = "http://127.0.0.1:%d/topology#server=py-A-0" % system["A0"].http_port
    render(url, "--window-size=1150,470", "--screenshot=" + os.path.abspath(target))
    with open(target, "rb") as f:
        head = f.read(8)
    assert head == b"\x89PNG\r\n\x1a\n" and os.path.getsize(target) > 5000


def test_page_is_self_contained(system):
    url = "http://127.0.0.1:%d/topology" % system["A0"].http_port
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/html")
        page = resp.read().decode()
    assert not re.search(r'(src|href)="(https?:)?//', page)  # no CDN, no remote asset
    assert len(page) < 20_000
    # listed on the monitoring index
    index = urllib.request.urlopen("http://127.0.0.1:%d/" % system["A0"].http_port).read()
    assert b"/topology" in index and b"/topz" in index and b"/explainz" in index
    assert get(system["A0"], "/topz?system=1&layout=1")[1]["layout"]["nodes"]
