"""Human-readable output: one run as a small table, a comparison as medians,
spread and ratios."""

import statistics


def fmt_rate(v):
    if v is None:
        return "-"
    if v >= 1e6:
        return "%.2fM" % (v / 1e6)
    if v >= 1e3:
        return "%.1fk" % (v / 1e3)
    return "%.0f" % v


def fmt_num(v, nd=1):
    return "-" if v is None else "%.*f" % (nd, v)


def format_result(res):
    """A single run as aligned ``key  value`` lines."""
    rows = []
    scen = res.get("scenario")
    head = "%s  size %sB  pubs %s  subs %s  url %s" % (
        scen, res.get("size"), res.get("pubs"), res.get("subs"), res.get("url"))
    if res.get("sub_url") and res.get("sub_url") != res.get("url"):
        head += "  sub-url %s" % res["sub_url"]
    if res.get("sink"):
        head += "  (built-in sink)"
    if scen == "conns":
        rows.append(("connections", "%s of %s (%s failed)" % (
            res.get("conns"), res.get("conns_wanted"), res.get("failed"))))
        rows.append(("conn/s", fmt_rate(res.get("conn_per_s"))))
        if res.get("rss_before") is not None:
            rows.append(("server RSS", "%.1f MB -> %.1f MB" % (res["rss_before_mb"],
                                                               res["rss_after_mb"])))
            rows.append(("RSS/conn", "%s KB" % fmt_num(res.get("kb_per_conn"))))
        else:
            rows.append(("server RSS", "- (pass --pid PID of the server)"))
    elif scen == "req":
        lat = res.get("lat_us") or {}
        rows.append(("latency us", "p50 %s  p90 %s  p99 %s  p99.9 %s  max %s" % tuple(
            fmt_num(lat.get(k)) for k in ("p50", "p90", "p99", "p99.9", "max"))))
        rows.append(("requests", "%s in %s s (%s/s)" % (
            res.get("sent"), fmt_num(res.get("secs"), 2), fmt_rate(res.get("msgs_per_s")))))
    else:
        what = {"pub": "published", "sub": "received (first to last)",
                "fanout": "deliveries (sum over subscribers)"}.get(scen, "delivered")
        rows.append(("msgs/s", "%s %s  (payload %s MB/s)" % (
            fmt_rate(res.get("msgs_per_s")), what, fmt_num(res.get("mb_per_s")))))
        if scen != "pub":
            rows.append(("published", "%s msgs/s" % fmt_rate(res.get("pub_per_s"))))
        rows.append(("sent", "{:,}".format(res.get("sent") or 0)))
        if scen != "pub":
            check = "no loss" if not res.get("error") else "FAILED"
            if res.get("verified"):
                check += ", tags verified (each message exactly once)"
            rows.append(("delivered", "{:,} of {:,}  ({})".format(
                res.get("delivered") or 0, res.get("expected") or 0, check)))
            if res.get("per_sub") and len(res["per_sub"]) > 1:
                rows.append(("per sub", " ".join("{:,}".format(c) for c in res["per_sub"])))
        rows.append(("time", "%s s" % fmt_num(res.get("secs"), 3)))
        if res.get("window_bytes"):
            rows.append(("window", "%d bytes (%d msgs per batch)" % (res["window_bytes"],
                                                                    res.get("batch_msgs", 0))))
    if res.get("gen_cpu_s") is not None:
        line = "%s s CPU" % fmt_num(res["gen_cpu_s"], 2)
        if res.get("srv_cpu") is not None:
            line += "; server %.2f CPUs" % res["srv_cpu"]
        rows.append(("generator", line))
    rows.append(("result", "OK" if res.get("ok") else "FAILED: %s" % res.get("error")))
    width = max(len(k) for k, _ in rows)
    return [head] + ["  %-*s  %s" % (width, k, v) for k, v in rows]


# ----------------------------------------------------------------------------- comparisons


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def spread(xs):
    xs = [x for x in xs if x is not None]
    if len(xs) < 2:
        return None
    m = statistics.median(xs)
    return 100.0 * (max(xs) - min(xs)) / m if m else None


def summarize_case(case, runs):
    """runs: [result dicts] of one server -> medians."""
    scen = case.split("/")[0]
    ok = [r for r in runs if r.get("ok")]
    s = {"runs": len(runs), "ok": len(ok), "errors": [r.get("error") for r in runs
                                                      if not r.get("ok")]}
    if scen == "conns":
        s.update(conns=med([r.get("conns") for r in ok]),
                 rss_before_mb=med([r.get("rss_before_mb") for r in ok]),
                 rss_after_mb=med([r.get("rss_after_mb") for r in ok]),
                 kb_per_conn=med([r.get("kb_per_conn") for r in ok]),
                 conn_per_s=med([r.get("conn_per_s") for r in ok]))
    elif scen == "req":
        lats = [r.get("lat_us") or {} for r in ok]
        s.update(p50=med([x.get("p50") for x in lats]), p99=med([x.get("p99") for x in lats]),
                 p999=med([x.get("p99.9") for x in lats]),
                 ops=med([r.get("msgs_per_s") for r in ok]),
                 spread=spread([x.get("p50") for x in lats]),
                 srv_cpu=med([r.get("srv_cpu") for r in ok]),
                 other_cpu=med([r.get("other_cpu") for r in ok]))
    else:
        rates = [r.get("msgs_per_s") for r in ok]
        s.update(msgs_per_s=med(rates), mb_per_s=med([r.get("mb_per_s") for r in ok]),
                 spread=spread(rates), min=min(rates) if rates else None,
                 max=max(rates) if rates else None,
                 srv_cpu=med([r.get("srv_cpu") for r in ok]),
                 msgs_per_cpu_s=med([r.get("msgs_per_cpu_s") for r in ok]),
                 gen_cpu=med([r.get("gen_cpu") for r in ok]),
                 other_cpu=med([r.get("other_cpu") for r in ok]))
    return s


def headline(case, s):
    """The one number a case is judged by, and whether higher is better."""
    scen = case.split("/")[0]
    if scen == "conns":
        return s.get("kb_per_conn"), False
    if scen == "req":
        return s.get("p50"), False
    return s.get("msgs_per_s"), True


def format_comparison(summary, labels):
    """Per case: medians per server and ratios first/other; then one compact table."""
    lines = []
    for case, per in summary.items():
        scen = case.split("/")[0]
        lines.append("")
        lines.append("== %s" % case)
        if scen == "conns":
            lines.append("  %-12s %7s %12s %9s %8s %8s  runs" % (
                "server", "conns", "rss_base MB", "rss MB", "KB/conn", "conn/s"))
        elif scen == "req":
            lines.append("  %-12s %9s %9s %9s %9s %7s %7s %6s  runs" % (
                "server", "p50 us", "p99 us", "p99.9 us", "ops/s", "spread", "srv_cpu", "other"))
        else:
            lines.append("  %-12s %9s %8s %7s %8s %8s %7s %10s %7s %6s  runs" % (
                "server", "msgs/s", "MB/s", "spread", "min", "max", "srv_cpu", "msgs/cpu-s",
                "gen_cpu", "other"))
        for label in labels:
            s = per.get(label)
            if s is None:
                continue
            runs = "%d/%d" % (s["ok"], s["runs"])
            if s["errors"]:
                runs += "  ERR: %s" % str(s["errors"][0])[:100]
            sp = "-" if s.get("spread") is None else "%.0f%%" % s["spread"]
            if scen == "conns":
                lines.append("  %-12s %7s %12s %9s %8s %8s  %s" % (
                    label, fmt_num(s["conns"], 0), fmt_num(s["rss_before_mb"]),
                    fmt_num(s["rss_after_mb"]), fmt_num(s["kb_per_conn"]),
                    fmt_rate(s["conn_per_s"]), runs))
            elif scen == "req":
                lines.append("  %-12s %9s %9s %9s %9s %7s %7s %6s  %s" % (
                    label, fmt_num(s["p50"]), fmt_num(s["p99"]), fmt_num(s["p999"]),
                    fmt_rate(s["ops"]), sp, fmt_num(s["srv_cpu"], 2),
                    fmt_num(s["other_cpu"], 2), runs))
            else:
                lines.append("  %-12s %9s %8s %7s %8s %8s %7s %10s %7s %6s  %s" % (
                    label, fmt_rate(s["msgs_per_s"]), fmt_num(s["mb_per_s"]), sp,
                    fmt_rate(s["min"]), fmt_rate(s["max"]), fmt_num(s["srv_cpu"], 2),
                    fmt_rate(s["msgs_per_cpu_s"]), fmt_num(s["gen_cpu"], 2),
                    fmt_num(s["other_cpu"], 2), runs))
        base = per.get(labels[0], {})
        for label in labels[1:]:
            other = per.get(label, {})
            keys = (["kb_per_conn"] if scen == "conns" else ["p50", "p99", "ops"]
                    if scen == "req" else ["msgs_per_s", "msgs_per_cpu_s"])
            parts = []
            for k in keys:
                a, b = base.get(k), other.get(k)
                parts.append("%s %s" % (k, ("%.3g" % (a / b)) if a and b else "-"))
            lines.append("  ratio %s/%s: %s" % (labels[0], label, ", ".join(parts)))
    lines.append("")
    lines.extend(compact_table(summary, labels))
    return lines


def compact_table(summary, labels):
    """Markdown: one row per case, the headline number per server, ratio first/other."""
    cols = ["case", "unit"] + list(labels) + ["%s/%s" % (labels[0], x) for x in labels[1:]]
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join(" --- " for _ in cols) + "|"]
    for case, per in summary.items():
        scen = case.split("/")[0]
        unit = {"conns": "KB RSS/conn", "req": "p50 us", "fanout": "deliveries/s"}.get(
            scen, "msgs/s")
        vals = [headline(case, per.get(label, {}))[0] for label in labels]
        cells = [case, unit]
        for v in vals:
            cells.append(fmt_num(v) if scen in ("conns", "req") else fmt_rate(v))
        for v in vals[1:]:
            cells.append("%.3g" % (vals[0] / v) if vals[0] and v else "-")
        out.append("| " + " | ".join(cells) + " |")
    return out
