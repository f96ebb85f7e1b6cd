"""``pluggy-nats topology`` and ``pluggy-nats explain`` against the composed
system, over $SYS as a system account user and through a monitoring URL."""

import subprocess
import sys
import xml.etree.ElementTree as ET


def cli(*args, timeout=60):
    proc = subprocess.run([sys.executable, "-m", "pluggy_nats"] + list(args),
                          capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def test_topology_text_svg_dot(system):
    sys_url = system.url("A0", "sys", "sys")
    status, out, err = cli("topology", "--server", sys_url, "--timeout", "10")
    assert status == 0, err
    assert out.startswith("system: 4 servers answered, 3 leaf servers seen from their hubs")
    for words in ("cluster A", "cluster B", "py-A-0  pluggy-nats", "go-A-1  nats-server",
                  "leaf     LA [APP] (we are hub)", "leaf     TB [T] (we are hub)",
                  "gateway  -> B", "cluster (none)\n  J0  pluggy-nats",
                  "leaf     py-A-0 [SYS] (we are spoke)",
                  "APP/ORDERS_COPY  R1  leader J0  on J0  mirror of ORDERS"):
        assert words in out, (words, out)

    status, out, err = cli("topology", "--server", "http://127.0.0.1:%d"
                           % system["B0"].http_port, "--format", "svg", "--timeout", "10")
    assert status == 0, err
    root = ET.fromstring(out)
    ns = "{http://www.w3.org/2000/svg}"
    names = {g.findall(ns + "text")[0].text for g in root.iter(ns + "g")
             if g.get("class") == "server"}
    assert names == {"py-A-0", "go-A-1", "py-B-0", "LA", "LG", "TB", "J0"}
    kinds = sorted(line.get("class") for line in root.iter(ns + "path")
                   if line.get("class", "").startswith("edge"))
    assert kinds.count("edge route") == 1 and kinds.count("edge leaf") == 4
    assert kinds.count("edge gateway") == 3  # one outbound per server

    status, out, err = cli("topology", "--server", sys_url, "--format", "dot", "--timeout", "10")
    assert status == 0, err
    assert out.startswith("graph nats {") and out.count("subgraph cluster_") == 3
    assert out.count(" -- ") == 8


def test_explain_command(system):
    sys_url = system.url("A0", "sys", "sys")
    status, out, err = cli("explain", "--server", sys_url, "--account", "APP", "nobody.x")
    assert status == 0, err
    assert "published on py-A-0 (cluster A)" in out and "receives: nobody" in out
    assert out.count("route go-A-1: no interest") == 1  # pooled connections are one link
    assert "gateway cluster B: gateway to cluster B is Interest-Only" in out
    status, out, err = cli("explain", "--server", "http://127.0.0.1:%d"
                           % system["A0"].http_port, "--account", "APP", "old.x")
    assert status == 0, err
    assert "mapping: old.* -> new.x" in out
    status, out, err = cli("explain", "--server", sys_url, "--account", "APP",
                           "--from", "py-B-0", "nobody.x")
    assert status == 0, err
    assert "published on py-B-0 (cluster B)" in out
    assert "py-B-0  gateway cluster A: gateway to cluster A is Interest-Only" in out


def test_commands_bad_input(system):
    sys_url = system.url("A0", "sys", "sys")
    for args, words in [
        (["explain", "--server", sys_url, "--account", "APP", "a.*"],
         "not a valid publish subject"),
        (["explain", "--server", sys_url, "--account", "NOPE", "a.b"],
         "'NOPE' is not known to py-A-0"),
        (["explain", "--server", system.url("A0"), "--account", "APP", "--timeout", "0.3",
          "a.b"], "did not answer EXPLAINZ"),  # not a system account user
        (["topology", "--server", system.url("A0"), "--timeout", "0.3"],
         "no server answered"),
        (["topology", "--server", "nats://127.0.0.1:1"], "cannot reach the server"),
    ]:
        status, out, err = cli(*args)
        assert status == 1 and words in err, (args, out, err)
