"""``pluggy-nats bench compare --only mirror``: a hub and its leaf with
JetStream domains, publish at the hub, time until the leaf's mirror holds
every message, ours beside Go in one run."""

import json
import subprocess
import sys

from pluggy_nats.testing.plugin import require_go_nats_server


def test_bench_compare_mirror_against_go(tmp_path):
    go = require_go_nats_server()[0]
    out = tmp_path / "cmp.json"
    cmd = [sys.executable, "-m", "pluggy_nats", "bench", "compare",
           "--server", "py=%s -m pluggy_nats serve" % sys.executable, "--server", "go=" + go,
           "--reps", "1", "--only", "mirror", "--sizes", "16", "--msgs", "3000",
           "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = json.loads(out.read_text())["runs"]
    for label in ("py", "go"):
        (res,) = runs["mirror/16B"][label]
        assert res["ok"] and res["sent"] == 3000 and res["pub_errors"] == 0, (label, res)
        assert res["msgs_per_s"] > 0 and res["pub_msgs_per_s"] >= res["msgs_per_s"], label
        assert res["msgs_per_cpu_s"] and res["msgs_per_cpu_s"] > 0, label
