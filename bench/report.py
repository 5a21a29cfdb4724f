#!/usr/bin/python3
"""Turn a benchmark's RAW.json into Markdown/CSV tables and gnuplot plots.

    bench/report.py RAW.json OUTDIR [--latency FILE.json] [--latency KEY=NS ...]
                    [--require-plots]

Writes OUTDIR/summary.md (header quoting meta.command/date/host/qemu, every
table, the plots linked as images, notes on what was left out) and prints it;
CSV per table: main.csv and devices.csv (1. workloads, groups main and
devices), micro.csv (2. konabench),
amplification.csv + histogram.csv (3. write-back amplification),
windows-summary.csv + windows.csv (4. per-window amplification, every window),
granularity.csv (5. block-sweep), amat.csv (6. modelled AMAT), runtimes.csv
(7. Kona against page-granular runtimes, measured: bench/runtimes.py); plots
histogram.png amplification.png windows.png (and windows-bytes.png for the
windows group) granularity.png amat.png runtimes.png.
A table whose runs or fields are missing is omitted (summary.md says so).
Markdown shows "-" for a missing value or a division by zero; CSV leaves the
cell empty, and holds bytes and counts rather than MiB.  Ratios are
performance ratios (value/ref if higher is better, else ref/value): > 1
means faster than the reference.

--latency KEY=NS (repeatable) or FILE.json ({"KEY": NS, ...}) overrides the
AMAT model's latencies in ns; the defaults are the Kona paper's:
  cache_link=130 local_dram=82 remote_64=2420 remote_4k=3110
  remote_64k=9280 fault_10us=10000 fault_40us=40000
Plots need gnuplot (terminal pngcairo, else png; $GNUPLOT names the binary).
Without it the tables are still written, stderr says the plots were skipped,
and the exit status is 0, or 1 with --require-plots (also if a plot fails).
Bad input (not JSON, no "runs", unknown latency key) exits 2.

RAW.json, as bench/collect.py writes it:
  {"meta": {"command", "date", "host", "qemu", "smoke", "window_ms", "accel",
            "failed" (optional list), "merged" (optional list of the
            earlier runs whose results it completes: {"command", "date",
            "bench_seconds", "runs", "within": true for one that an
            earlier run had merged itself})},
   "runs": [{"group": "main" | "devices" | "cache-sweep" | "block-sweep" |
                      "runtimes" | "windows",
             "config": e.g. "ram" "cxl-type3" "kona-fit" "kona-25" "cache-50",
             "device": "ram" | "cxl-type3" | "kona-cxl", "workload": str,
             "cache_bytes", "block_size", "cache_fraction", "data_bytes": num|null,
             "tracking": "exact" | "fast" | "stores" | null (kona-cxl's mode;
                 absent means exact),
             "metrics": {NAME: {"value": float, "unit": str}},
             "primary": NAME, "higher_is_better": bool,
             "stats": null | {"reads", "writes", "hits", "misses", "fetches",
                 "fetch-bytes", "writeback-bytes", "page-writeback-bytes",
                 "hugepage-writeback-bytes", ...: int},
             "hist": null | [65 ints: pages written back with n dirty lines],
             "windows": null | [{"lines", "pages", "hugepages"}: distinct 64 B
                 lines, 4 KiB and 2 MiB pages written per meta.window_ms]}]}
  konabench's metrics: seq-write, seq-read, memset (MB/s), chase (ns),
  first-touch (us/page); all of them go to the micro-benchmark table.
"""
import argparse
import csv
import json
import math
import os
import shutil
import statistics
import subprocess
import sys

import runtimes

LATENCY = {"cache_link": 130, "local_dram": 82, "remote_64": 2420,
           "remote_4k": 3110, "remote_64k": 9280,
           "fault_10us": 10000, "fault_40us": 40000}
MIB, HUGE, PAGE, LINE = 1 << 20, 2 << 20, 4096, 64
KONABENCH = {"seq-write": True, "seq-read": True, "memset": True,
             "chase": False, "first-touch": False}   # higher is better?


class InputError(Exception):
    """Bad input or arguments: exit status 2."""


# ---------------------------------------------------------------- helpers

def num(x):
    """x as a float, or None if it is not a finite number."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None


def div(a, b):
    return None if a is None or b is None or b == 0 else a / b


def perf_ratio(value, ref, higher):
    """> 1 means `value` performs better than `ref`."""
    return div(value, ref) if higher else div(ref, value)


def fmt(x, kind="num"):
    """Markdown cell: 3 significant digits, MiB with 2 decimals, '-' if none."""
    if x is None or isinstance(x, str):
        return x or "-"
    if kind == "mib":
        return f"{x / MIB:.2f}"
    if kind == "int":
        return str(int(x))
    if kind == "pct":
        return f"{100 * x:.3g}%"
    if kind == "x":
        return f"{x:.2f}x"
    return f"{x:.0f}" if abs(x) >= 999.5 else f"{x:.3g}"


def csv_cell(x):
    if x is None:
        return ""
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, float):
        if x.is_integer() and abs(x) < 1e15:
            return str(int(x))
        return f"{x:.6g}" if abs(x) < 1e6 else f"{x:.1f}"
    return str(x)


def md_table(header, rows):
    """A Markdown table; columns holding only numbers are right-aligned."""
    def numeric(col):
        try:
            return bool([float(r[col].rstrip("%")) for r in rows
                         if r[col] != "-"])
        except ValueError:
            return False
    align = ["---:" if numeric(i) else "---" for i in range(len(header))]
    return "\n".join(["| " + " | ".join(header) + " |",
                      "|" + "|".join(align) + "|"] +
                     ["| " + " | ".join(r) + " |" for r in rows])


def metric(run, name):
    return num(run["metrics"].get(name, {}).get("value"))


def unit(run, name):
    return str(run["metrics"].get(name, {}).get("unit", ""))


def stat(run, key):
    return num((run["stats"] or {}).get(key))


def hist_of(run):
    """The dirty-lines histogram as floats (None unless it counts pages)."""
    h = [num(v) or 0 for v in (run["hist"] or [])[:65]]
    return h if sum(h[1:]) > 0 else None


def hist_summary(h):
    """(pages, mean dirty lines per page, share of pages with <= 8 lines)."""
    if not h:
        return None, None, None
    pages = sum(h[1:])
    return pages, sum(n * v for n, v in enumerate(h)) / pages, sum(h[1:9]) / pages


def unique(seq):
    return list(dict.fromkeys(seq))


def is_kona(run):
    return run["device"] == "kona-cxl"


def config_key(run):
    """ram, cxl-type3, then kona configs from the largest cache down."""
    frac = run["cache_fraction"]
    return ({"ram": 0, "cxl-type3": 1}.get(run["device"], 2),
            -(frac if frac is not None else math.inf),
            run["block_size"] or 0, run["config"])


def configs_of(runs):
    first = {}
    for r in runs:
        first.setdefault(r["config"], r)
    return sorted(first, key=lambda c: config_key(first[c]))


def references(runs, configs):
    """(ram config, cxl-type3 config, [(ref, [configs compared to it])])."""
    dev = {r["config"]: r["device"] for r in runs}
    ram = next((c for c in configs if dev[c] == "ram"), None)
    cxl = next((c for c in configs if dev[c] == "cxl-type3"), None)
    refs = [(ref, [c for c in configs if c != ref and dev[c] != "ram"])
            for ref in (ram, cxl) if ref]
    return ram, cxl, [(ref, cs) for ref, cs in refs if cs]


def smallest_cache(runs):
    """The kona config of `runs` with the smallest cache (None if none)."""
    kona = [r for r in runs if is_kona(r)]
    return max(kona, key=config_key)["config"] if kona else None


def ordered(runs):
    """Runs by workload (first appearance), then config order."""
    ws, cs = unique(r["workload"] for r in runs), configs_of(runs)
    return sorted(runs, key=lambda r: (ws.index(r["workload"]),
                                       cs.index(r["config"])))


def gq(s):
    """A gnuplot double-quoted string."""
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---------------------------------------------------------------- output

class Report:
    """Collects summary.md, writes CSV files and renders plots."""

    def __init__(self, outdir, gnuplot):
        self.outdir, self.gnuplot, self.term = outdir, gnuplot, None
        self.md, self.plot_failures = [], []
        for term in ("pngcairo", "png") if gnuplot else ():
            try:
                p = subprocess.run([gnuplot], input=f"set terminal {term}\n",
                                   capture_output=True, text=True, timeout=30)
            except (OSError, subprocess.SubprocessError):
                continue
            if p.returncode == 0 and not p.stderr.strip():
                self.term = term
                break
        else:
            print("report: " + ("gnuplot has no png terminal" if gnuplot else
                                "gnuplot not found") + "; plots skipped",
                  file=sys.stderr)

    def text(self, s):
        self.md.append(s)

    def table(self, header, rows):
        self.md.append(md_table(header, rows))

    def csv(self, name, header, rows):
        with open(os.path.join(self.outdir, name), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header.split())
            w.writerows([csv_cell(c) for c in r] for r in rows)

    def plot(self, name, title, panels):
        """Render `panels` (two per row) into OUTDIR/name and link it.

        panel: {"title", "xlabel", "ylabel", "y2label", "logx": base, "logy",
                "xtics": [(label, x)], "xrange": (lo, hi), "extra": [gnuplot
                commands], "series":
                [{"title", "points": [(x, y)], "axes": "x1y2", "style"}]}
        Points with y None (or <= 0 on a log axis) are dropped; series
        and panels left empty are dropped too."""
        path = os.path.join(self.outdir, name)
        if os.path.exists(path):
            os.remove(path)
        kept = []
        for p in panels:
            series = []
            for s in p["series"]:
                log = p.get("logy") and s.get("axes", "x1y1") == "x1y1"
                pts = [(x, y) for x, y in s["points"]
                       if y is not None and (y > 0 or not log)]
                series += [dict(s, points=pts)] if pts else []
            kept += [dict(p, series=series)] if series else []
        if not kept:
            return self.text(f"_{name}: no data to plot._")
        if not self.term:
            self.plot_failures.append(name)
            return self.text(f"_{name} skipped: gnuplot is not available._")
        cols = 1 if len(kept) == 1 else 2
        rows = math.ceil(len(kept) / cols)
        data, cmds = [], []
        for p in kept:
            cmds += ["reset", "set grid", "set key below", "set autoscale xfix",
                     "set style fill solid 0.7 border -1",
                     "set offsets graph 0.03, graph 0.03, 0, 0"]
            cmds += [f"set {k} {gq(p[k])}" for k in
                     ("title", "xlabel", "ylabel", "y2label") if p.get(k)]
            if p.get("y2label"):
                cmds += ["set ytics nomirror", "set y2tics"]
            if p.get("logx"):
                cmds.append(f"set logscale x {p['logx']}")
            if p.get("logy"):
                cmds.append("set logscale y")
            if p.get("xtics"):
                cmds.append("set xtics rotate by -30 (" + ", ".join(
                    f"{gq(lab)} {x}" for lab, x in p["xtics"]) + ")")
            if p.get("xrange"):
                cmds += ["set offsets 0, 0, 0, 0",
                         "set xrange [%g:%g]" % p["xrange"],
                         "set boxwidth 0.4"]
            cmds += p.get("extra", [])
            plots = []
            for s in p["series"]:
                d = f"$d{len(data)}"
                data.append(f"{d} << EOD\n" + "".join(
                    f"{x:.9g} {y:.9g}\n" for x, y in s["points"]) + "EOD")
                plots.append(f"{d} using 1:2 axes {s.get('axes', 'x1y1')} with"
                             f" {s.get('style', 'linespoints')} title "
                             f"{gq(s['title'])}")
            cmds.append("plot " + ", ".join(plots))
        script = [f"set terminal {self.term} noenhanced size "
                  f"{720 * cols},{480 * rows}", f"set output {gq(path)}"] + \
            data + [f"set multiplot layout {rows},{cols} title {gq(title)}"] + \
            cmds + ["unset multiplot", "set output"]
        try:
            p = subprocess.run([self.gnuplot], input="\n".join(script) + "\n",
                               capture_output=True, text=True, timeout=120)
            ok, err = p.returncode == 0 and os.path.getsize(path) > 0, p.stderr
        except (OSError, subprocess.SubprocessError) as e:
            ok, err = False, str(e)
        if ok:
            return self.text(f"![{title}]({name})")
        self.plot_failures.append(name)
        print(f"report: gnuplot failed for {name}:\n{err}", file=sys.stderr)
        self.text(f"_{name}: gnuplot failed._")


# ---------------------------------------------------------------- tables

def tracking(run):
    """kona-cxl's tracking mode of a kona run (exact where RAW.json is
    older than the field)."""
    return run.get("tracking") or "exact"


def describe(runs):
    """What produced these runs: data set per config and kona-cxl's mode,
    e.g. "64 MiB per workload; kona-fit, kona-25: tracking=fast"."""
    sizes = unique(f"{r['data_bytes'] / MIB:g} MiB" for r in runs
                   if r.get("data_bytes"))
    modes = {}
    for r in (r for r in runs if is_kona(r)):
        configs = modes.setdefault(tracking(r), [])
        if r["config"] not in configs:
            configs.append(r["config"])
    parts = [" or ".join(sizes) + " per workload"] if sizes else []
    parts += [f"{', '.join(cs)}: tracking={m}" for m, cs in modes.items()]
    return "; ".join(parts)


MODE_NOTE = {
    "exact": "every load and store through the device: exact counts, "
             "hits and misses",
    "fast": "resident data as guest RAM (RAM speed), misses by userfaultfd; "
            "dirty lines found by comparison with a clean copy at "
            "write-back, so a store of an unchanged value is not counted",
    "stores": "loads at RAM speed, every store through the device: exact "
              "dirty lines, misses by userfaultfd",
}


def mode_notes(runs):
    ms = unique(tracking(r) for r in runs if is_kona(r))
    return " ".join(f"tracking={m}: {MODE_NOTE.get(m, m)}." for m in ms)


def table_main(rep, runs):
    rep.text("## 1. Workloads")
    main = [r for r in runs if r["group"] == "main"
            and r["workload"] != "konabench"]
    devices = [r for r in runs if r["group"] == "devices"
               and r["workload"] != "konabench"]
    if not main and not devices:
        return rep.text("_No runs of group main or devices; table omitted._")
    if main:
        rep.text(f"The paper's workloads (group main): {describe(main)}. "
                 f"{mode_notes(main)}")
        table_workloads(rep, main, "main.csv")
    if devices:
        rep.text(f"### The device models side by side (group devices)\n\n"
                 f"{describe(devices)}: small, because QEMU's cxl-type3 "
                 f"serves every access through its I/O path. "
                 f"{mode_notes(devices)}")
        table_workloads(rep, devices, "devices.csv")


def table_workloads(rep, rs, csv_name):
    by = {(r["workload"], r["config"]): r for r in rs}
    configs = configs_of(rs)
    ram, cxl, refs = references(rs, configs)
    rep.text("Primary metric of each workload per configuration, then the "
             "performance ratio of each configuration to a reference: "
             "value/ref when higher is better, ref/value when lower is "
             "better, so **> 1 means faster than the reference**.")
    perf, ratios, counts, out = [], [], [], []
    for w in unique(r["workload"] for r in rs):
        first = next(r for r in rs if r["workload"] == w)
        name, higher = first["primary"], first["higher_is_better"]
        val = {c: metric(by[w, c], name) if (w, c) in by else None
               for c in configs}
        perf.append([w, f"{name} ({unit(first, name) or '-'}, "
                        f"{'higher' if higher else 'lower'} better)"] +
                    [fmt(val[c]) for c in configs])
        ratios.append([w] + [fmt(perf_ratio(val[c], val[ref], higher))
                             for ref, cs in refs for c in cs])
        for r in (by[w, c] for c in configs if (w, c) in by):
            c = r["config"]
            wb, page = stat(r, "writeback-bytes"), stat(r, "page-writeback-bytes")
            if is_kona(r):
                counts.append([w, c, fmt(stat(r, "fetches"), "int"),
                               fmt(stat(r, "fetch-bytes"), "mib"),
                               fmt(wb, "mib"), fmt(div(page, wb))])
            out.append([w, c, r["device"], r["cache_fraction"],
                        r["block_size"], name, unit(r, name), higher,
                        val[c], perf_ratio(val[c], val.get(ram), higher),
                        perf_ratio(val[c], val.get(cxl), higher),
                        stat(r, "fetches"), stat(r, "fetch-bytes"), wb, page,
                        div(page, wb), r.get("tracking"), r.get("data_bytes")])
    rep.table(["workload", "metric"] + configs, perf)
    if refs:
        rep.text("Performance ratios (> 1 = faster than the reference):")
        rep.table(["workload"] + [f"{c}/{ref}" for ref, cs in refs for c in cs],
                  ratios)
    if counts:
        rep.text("Kona device counts (page-amp = bytes a 4 KiB-page runtime "
                 "would write back / dirty-line bytes Kona wrote back):")
        rep.table(["workload", "config", "fetches", "fetch MiB",
                   "write-back MiB", "page-amp"], counts)
    rep.csv(csv_name, "workload config device cache_fraction block_size "
            "metric unit higher_is_better value ratio_vs_ram ratio_vs_cxl "
            "fetches fetch_bytes writeback_bytes page_writeback_bytes "
            "page_amplification tracking data_bytes", out)


def regime(run):
    """'resident' if the kona cache holds the whole data set, else 'misses'."""
    frac = run["cache_fraction"]
    if not is_kona(run):
        return ""
    if frac is None:
        return "resident" if "fit" in run["config"] else ""
    return "resident" if frac >= 1 else "misses"


def table_micro(rep, runs):
    rep.text("## 2. Micro-benchmark (konabench)")
    rs = [r for r in runs if r["workload"] == "konabench"
          and r["group"] in ("devices", "main")]
    if not rs:
        return rep.text("_No konabench runs in group devices or main; "
                        "table omitted._")
    rep.text(f"{describe(rs)}. {mode_notes(rs)} `scripts/bench-micro` "
             "compares every mode of kona-cxl, in interleaved rounds.")
    by = {r["config"]: r for r in rs}
    configs = configs_of(rs)
    ram, cxl, refs = references(rs, configs)
    names = unique([m for m in KONABENCH if any(metric(r, m) is not None
                                                 for r in rs)] +
                   [m for r in rs for m in (r.get("metrics") or {})])
    rep.text("Every konabench metric per configuration. Kona configs marked "
             "*resident* hold the whole data set in the device cache (the fit "
             "configs: hits after the first touch); *misses* ones have a "
             "smaller cache (25%, 10%), so the loops miss to the memory node. Ratios "
             "as in table 1 (> 1 = faster than the reference).")
    vals, ratios, out = [], [], []
    for m in names:
        u = next((unit(r, m) for r in rs if unit(r, m)), "")
        higher = KONABENCH.get(m, "/s" in u)
        v = {c: metric(by[c], m) for c in configs}
        vals.append([m, u or "-", "higher" if higher else "lower"] +
                    [fmt(v[c]) for c in configs])
        ratios.append([m] + [fmt(perf_ratio(v[c], v[ref], higher))
                             for ref, cs in refs for c in cs])
        out += [[m, u, higher, c, by[c]["device"], regime(by[c]), v[c],
                 perf_ratio(v[c], v.get(ram), higher),
                 perf_ratio(v[c], v.get(cxl), higher)] for c in configs]
    rep.table(["metric", "unit", "better"] +
              [f"{c} ({regime(by[c])})" if regime(by[c]) else c
               for c in configs], vals)
    if refs:
        rep.table(["metric"] + [f"{c}/{ref}" for ref, cs in refs for c in cs],
                  ratios)
    rep.csv("micro.csv", "metric unit higher_is_better config device regime "
            "value ratio_vs_ram ratio_vs_cxl", out)


def table_amplification(rep, runs):
    rep.text("## 3. Amplification at write-back")
    counted = [r for r in runs if is_kona(r) and (r["stats"] or hist_of(r))]
    main = [r for r in counted if r["group"] == "main"]
    # Write-back figures come from exactly counted runs where there are
    # any: tracking=fast misses a store of an unchanged value.
    rs = ordered([r for r in main if tracking(r) != "fast"] or main or
                 [r for r in counted if r["group"] == "devices"])
    if not rs:
        return rep.text("_No kona runs with statistics in group main or "
                        "devices; table omitted._")
    exact = all(tracking(r) != "fast" for r in rs)
    left_out = unique(r["config"] for r in main if r not in rs)
    rep.text(f"Group {rs[0]['group']}: {describe(rs)}. {mode_notes(rs)} " +
             ("Every dirty line counted exactly" +
              (f" ({', '.join(left_out)}: tracking=fast, left out here)"
               if left_out else "") + ". " if exact else
              "Exact counts of the same kind, at smaller sizes: group "
              "devices (table 1) and table 7's Kona runs."))
    rep.text("Kona writes back only the dirty 64 B lines; a page-granular "
             "runtime evicting the same blocks would write back each 4 KiB "
             "page holding a dirty line. Amplification = those bytes / "
             "dirty-line bytes. A 2 MiB-page runtime is left out here: it "
             "would fetch and evict 2 MiB at a time, far less often than a "
             "4 KiB-block cache, so the cache's evictions say nothing of what "
             "it would write back (the device's hugepage-writeback-bytes, 2 "
             "MiB per write-back of a newly dirtied huge page, overstates it "
             "by up to 512x); table 4 compares 2 MiB pages per window, as the "
             "paper does. The mean and the share of pages with <= 8 dirty "
             "lines come from the histogram of dirty lines per written-back "
             "4 KiB page.")
    rows, out, hist_rows = [], [], []
    for r in rs:
        w, c = r["workload"], r["config"]
        wb, page = stat(r, "writeback-bytes"), stat(r, "page-writeback-bytes")
        h = hist_of(r)
        pages, mean, small = hist_summary(h)
        rows.append([w, c, fmt(wb, "mib"), fmt(page, "mib"),
                     fmt(div(page, wb)), fmt(mean), fmt(small, "pct")])
        out.append([w, c, wb, page, div(page, wb), pages, mean, small])
        hist_rows += [[w, c, n, h[n]] for n in range(1, len(h))] if h else []
    rep.table(["workload", "config", "write-back MiB", "4 KiB-page MiB",
               "4 KiB amp", "mean dirty lines/page", "pages <= 8 lines"], rows)
    rep.csv("amplification.csv", "workload config writeback_bytes "
            "page_writeback_bytes amp_4k hist_pages mean_dirty_lines_per_page "
            "share_pages_le_8_lines", out)
    if hist_rows:
        rep.csv("histogram.csv", "workload config n pages", hist_rows)
    chosen = smallest_cache([r for r in rs if hist_of(r)])
    cdf = [{"title": r["workload"], "style": "lines lw 2", "points": [
        (n, sum(h[1:n + 1]) / sum(h[1:])) for n in range(1, len(h))]}
        for r, h in ((r, hist_of(r)) for r in rs) if h and r["config"] == chosen]
    if chosen:
        rep.plot("histogram.png", "Dirty lines per written-back 4 KiB page "
                 f"({chosen})", [{"xlabel": "dirty 64 B lines in the page",
                                  "ylabel": "share of pages (CDF)",
                                  "extra": ["set yrange [0:1.02]"],
                                  "series": cdf}])
    chosen = smallest_cache(rs)
    bars = [(r["workload"], div(stat(r, "page-writeback-bytes"),
                                stat(r, "writeback-bytes")))
            for r in rs if r["config"] == chosen]
    rep.plot("amplification.png", f"Write-back amplification ({chosen})", [{
        "ylabel": "4 KiB-page bytes / dirty-line bytes", "logy": True,
        "xtics": [(w, i) for i, (w, _) in enumerate(bars)],
        "xrange": (-0.6, len(bars) - 0.4), "series": [
            {"title": "4 KiB pages", "style": "boxes",
             "points": [(i, a) for i, (_, a) in enumerate(bars)]}]}])


def window_amps(windows):
    """[(lines, pages, hugepages, amp4k, amp2m)] per window."""
    out = []
    for w in windows:
        lines, pages, huge = (num(w.get(k)) or 0 if isinstance(w, dict) else 0
                              for k in ("lines", "pages", "hugepages"))
        out.append((lines, pages, huge, div(pages * PAGE, lines * LINE),
                    div(huge * HUGE, lines * LINE)))
    return out


def plot_windows_bytes(rep, rs, window_ms):
    """The paper's per-window figure: what dirty 64 B lines and dirty 4 KiB
    pages amount to in each window of guest time (group windows)."""
    if not rs:
        return
    rep.plot("windows-bytes.png", "Written per window: 64 B lines against "
             "4 KiB pages", [{
                 "title": f"{r['workload']} ({r['config']})",
                 "xlabel": "guest time (s)", "ylabel": "MiB per window",
                 "logy": True, "series": [
                     {"title": title, "points": [
                         (i * window_ms / 1000, w[k] * size / MIB)
                         for i, w in enumerate(window_amps(r["windows"]))]}
                     for k, size, title in ((0, LINE, "dirty 64 B lines"),
                                            (1, PAGE, "dirty 4 KiB pages"))]}
                 for r in rs])


def table_windows(rep, runs, window_ms):
    rep.text("## 4. Per-window amplification (the paper's tracker)")
    rs = [r for r in runs if is_kona(r) and r["windows"]]
    if not rs:
        return rep.text("_No runs with per-window counts; table omitted._")
    rep.text(f"{describe(rs)}. Windows of {window_ms:g} ms of guest time "
             "(tracking=fast sees no single store, so its runs have none). "
             "Per window, amp = "
             "distinct 4 KiB (2 MiB) pages written x page size / (distinct "
             "64 B lines written x 64); median, mean and max over the windows "
             "with lines > 0. Aggregate = sum of page bytes / sum of line "
             "bytes over all windows.")
    rows, out, every = [], [], []
    for r in rs:
        ws = window_amps(r["windows"])
        live = [w for w in ws if w[0] > 0]
        line_bytes = sum(w[0] for w in ws) * LINE
        st = []
        for i, size in ((3, PAGE), (4, HUGE)):
            a = [w[i] for w in live]
            st += [statistics.median(a) if a else None,
                   statistics.fmean(a) if a else None, max(a, default=None),
                   div(sum(w[i - 2] for w in ws) * size, line_bytes)]
        rows.append([r["workload"], r["config"], str(len(ws)), str(len(live))]
                    + [fmt(s) for s in st])
        out.append([r["workload"], r["config"], r["group"], len(ws),
                    len(live)] + st)
        every += [[r["workload"], r["config"], i, int(w[0]), int(w[1]),
                   int(w[2]), w[3], w[4], r["group"]] for i, w in enumerate(ws)]
    rep.table(["workload", "config", "windows", "with lines", "4K median",
               "4K mean", "4K max", "4K aggregate", "2M median", "2M mean",
               "2M max", "2M aggregate"], rows)
    rep.csv("windows-summary.csv", "workload config group windows "
            "windows_with_lines amp4k_median amp4k_mean amp4k_max "
            "amp4k_aggregate amp2m_median amp2m_mean amp2m_max "
            "amp2m_aggregate", out)
    rep.csv("windows.csv", "workload config index lines pages hugepages "
            "amp4k amp2m group", every)
    plot_windows_bytes(rep, [r for r in rs if r["group"] == "windows"],
                       window_ms)
    main = ([r for r in rs if r["group"] == "main"] or
            [r for r in rs if r["group"] == "devices"] or rs)
    chosen = smallest_cache(main)
    rep.plot("windows.png", f"4 KiB amplification per window ({chosen})", [{
        "xlabel": "guest time (s)", "ylabel": "amp4k", "logy": True,
        "series": [{"title": r["workload"], "points": [
            (i * window_ms / 1000, w[3])
            for i, w in enumerate(window_amps(r["windows"]))]}
            for r in main if r["config"] == chosen]}])


def table_granularity(rep, runs):
    rep.text("## 5. Fetch granularity (block-size sweep)")
    rs = sorted([r for r in runs if r["group"] == "block-sweep" and is_kona(r)
                 and r["block_size"]], key=lambda r: r["block_size"])
    if not rs:
        return rep.text("_No runs of group block-sweep; table omitted._")
    rep.text(f"{describe(rs)}. One cache size, different fetch block sizes: "
             "run time (the seconds metric, else the primary one) and the "
             "traffic to the memory node.")
    rows, out, panels = [], [], []
    for w in unique(r["workload"] for r in rs):
        pts = []
        for r in (r for r in rs if r["workload"] == w):
            name = "seconds" if metric(r, "seconds") is not None \
                else r["primary"]
            t, b = metric(r, name), int(r["block_size"])
            fb, wb = stat(r, "fetch-bytes"), stat(r, "writeback-bytes")
            rows.append([w, str(b), fmt(t), unit(r, name) or "-",
                         fmt(stat(r, "fetches"), "int"), fmt(fb, "mib"),
                         fmt(wb, "mib"), fmt(stat(r, "misses"), "int")])
            out.append([w, r["config"], b, name, t, stat(r, "fetches"), fb,
                        wb, stat(r, "misses")])
            pts.append((b, div(fb, MIB), div(wb, MIB), t))
        panels.append({"title": w, "xlabel": "block size (bytes)", "logx": 2,
                       "logy": True, "ylabel": "MiB",
                       "y2label": f"run time ({name})", "series": [
                           {"title": t, "axes": axes,
                            "points": [(p[0], p[k]) for p in pts]}
                           for k, t, axes in ((1, "fetched MiB", "x1y1"),
                                              (2, "write-back MiB", "x1y1"),
                                              (3, "run time", "x1y2"))]})
    rep.table(["workload", "block", "run time", "unit", "fetches",
               "fetched MiB", "write-back MiB", "misses"], rows)
    rep.csv("granularity.csv", "workload config block_size time_metric "
            "time_value fetches fetch_bytes writeback_bytes misses", out)
    rep.plot("granularity.png", "Fetch granularity", panels)


def remote_ns(lat, block):
    """Remote fetch latency, linear in log2(block) between 64 B, 4 KiB and
    64 KiB, flat beyond the ends."""
    pts = [(6, lat["remote_64"]), (12, lat["remote_4k"]),
           (16, lat["remote_64k"])]
    x = math.log2(block)
    if x <= pts[0][0]:
        return pts[0][1]
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return pts[-1][1]


def table_amat(rep, runs, lat):
    rep.text("## 6. Modelled average memory access time")
    rs = [r for r in runs if is_kona(r) and r["group"] in ("main", "cache-sweep")
          and r["stats"] and r["cache_fraction"] is not None
          and tracking(r) == "exact"]
    if not rs:
        return rep.text("_No tracking=exact kona runs with statistics in "
                        "groups cache-sweep or main; table omitted._")
    rep.text(f"{describe(rs)}: the model needs every access counted, which "
             "only tracking=exact does.")
    faults = (lat["fault_10us"], lat["fault_40us"])
    rep.text(
        "accesses = reads + writes. Kona: (hits x cache_link + misses x "
        "(cache_link + remote(B))) / accesses, remote(B) interpolated "
        "linearly in log2 of the block size B between the 64 B, 4 KiB and "
        "64 KiB latencies. Page-granular runtime: (hits x local_dram + misses"
        " x (local_dram + fault)) / accesses. A block-size-4096 run's misses "
        "are the page runtime's faults at the same cache size, so its counts "
        "serve both models; for other block sizes the page-runtime columns "
        "are left empty. Latencies (ns): " +
        ", ".join(f"{k}={v:g}" for k, v in lat.items()) + ".")
    ws = unique(r["workload"] for r in rs)
    rs.sort(key=lambda r: (ws.index(r["workload"]), r["cache_fraction"],
                           r["group"] != "cache-sweep", r["config"]))
    rows, out, panels = [], [], []
    for w in ws:
        pts = {}
        for r in (r for r in rs if r["workload"] == w):
            acc = (stat(r, "reads") or 0) + (stat(r, "writes") or 0)
            hits, miss = stat(r, "hits"), stat(r, "misses")
            block, frac = r["block_size"], r["cache_fraction"]
            ok = hits is not None and miss is not None and block
            rem = remote_ns(lat, block) if ok else None
            kona = div(hits * lat["cache_link"] + miss * (lat["cache_link"] +
                                                          rem), acc) if ok else None
            page = [div(hits * lat["local_dram"] + miss * (lat["local_dram"] + f),
                        acc) if ok and block == PAGE else None for f in faults]
            rows.append([w, r["config"], fmt(frac), fmt(block, "int"),
                         fmt(acc, "int"), fmt(div(miss, acc), "pct"),
                         fmt(kona)] + [fmt(p) for p in page])
            out.append([w, r["group"], r["config"], frac, block, acc, hits,
                        miss, rem, kona] + page)
            if frac <= 1:   # the plot spans 10-100% (kona-fit is larger)
                pts.setdefault(frac, [kona] + page)
        panels.append({"title": w, "xlabel": "cache size / data set",
                       "ylabel": "AMAT (ns)", "logy": True,
                       "extra": ["set xrange [0:1.05]"], "series": [
                           {"title": t, "points": [(f, pts[f][i])
                                                   for f in sorted(pts)]}
                           for i, t in enumerate(["Kona"] + [
                               f"page, {f / 1000:g} us fault" for f in faults])]})
    rep.table(["workload", "config", "cache fraction", "block", "accesses",
               "miss rate", "Kona AMAT (ns)"] +
              [f"page {f / 1000:g} us (ns)" for f in faults], rows)
    rep.csv("amat.csv", "workload group config cache_fraction block_size "
            "accesses hits misses remote_ns amat_kona_ns "
            "amat_page_fault_10us_ns amat_page_fault_40us_ns", out)
    rep.plot("amat.png", "Modelled average memory access time", panels)


def table_runtimes(rep, runs, lat):
    rep.text("## 7. Kona against page-granular runtimes, measured")
    rows = runtimes.compare(runs, lat)
    if not rows:
        return rep.text("_No runs of group runtimes; table omitted._")
    rep.text(describe([r for r in runs if r["group"] == "runtimes"]) + ".")
    pages = [n for n, _ in runtimes.PAGE_RUNTIMES]
    rep.text(
        "The same device and workloads, at the same cache sizes, in one run: "
        "Kona (`tracking=exact,latency=kona-paper`: at least 3.11 us per "
        "4 KiB fetch, dirty 64 B lines written back) against page-granular "
        "runtimes (`writeback=pages`: every 4 KiB page holding a dirty line "
        "written back whole; `latency=legoos`: at least 10 us per fault, "
        "`latency=infiniswap`: 40 us). \"x\" columns: how many times faster "
        "Kona ran, measured in the workload's timed phase (its own time or "
        "throughput: \"x timed\") and over its whole run (\"x run\": set-up, "
        "timed phase and check, the span the device's counters cover), and "
        "what the AMAT model predicts from the Kona run's hits and misses "
        "(section 6's formulas); the paper claims AMAT 1.7x and 5x better "
        "with 25% local. Hold the model against \"x run\": a workload whose "
        "misses fall outside its timed phase (PageRank misses while it builds "
        "its graph) shows them only there. Under TCG a hit costs a device "
        "call (~0.3 us) in every configuration and the workloads also "
        "compute, so measured ratios follow the model where misses dominate; "
        "the model counts no write-back, which the page runtimes do in whole "
        "pages.")
    md, out, panels = [], [], []
    for r in rows:
        v, wb, rs = r["value"], r["writeback_bytes"], r["run_seconds"]
        cells = [r["workload"], fmt(r["cache_fraction"], "pct"),
                 f'{r["metric"]} ({r["unit"]})', fmt(v.get("kona-paper")),
                 fmt(rs.get("kona-paper"))]
        for n in pages:
            cells += [fmt(v.get(n)), fmt(r["measured"][n], "x"),
                      fmt(r["measured_run"][n], "x"),
                      fmt(r["modelled"][n], "x"), fmt(r["claim"][n], "x")]
        cells += [" / ".join(fmt(wb.get(n), "mib") for n in
                             runtimes.RUNTIMES)]
        md.append(cells)
        out.append([r["workload"], r["cache_fraction"], r["metric"],
                    r["unit"]] +
                   [v.get(n) for n in runtimes.RUNTIMES] +
                   [r[k][n] for n in pages for k in ("measured", "modelled")] +
                   [wb.get(n) for n in runtimes.RUNTIMES] +
                   [r["amat"].get(n) for n in runtimes.RUNTIMES] +
                   [rs.get(n) for n in runtimes.RUNTIMES] +
                   [r["measured_run"][n] for n in pages])
    rep.table(["workload", "local", "metric", "Kona", "Kona run (s)"] +
              [h for n in pages for h in
               (f"{n}-like", "x timed", "x run", "x AMAT model", "x paper")] +
              ["write-back MiB (Kona/" + "/".join(pages) + ")"], md)
    rep.csv("runtimes.csv", "workload cache_fraction metric unit "
            "kona legoos infiniswap legoos_x_measured legoos_x_modelled "
            "infiniswap_x_measured infiniswap_x_modelled writeback_kona "
            "writeback_legoos writeback_infiniswap amat_kona_ns "
            "amat_legoos_ns amat_infiniswap_ns kona_run_s legoos_run_s "
            "infiniswap_run_s legoos_x_run infiniswap_x_run", out)
    for w in unique(r["workload"] for r in rows):
        ws = [r for r in rows if r["workload"] == w]
        panels.append({"title": w, "xlabel": "cache size / data set",
                       "ylabel": "times faster than the page runtime",
                       "extra": ["set xrange [0:0.3]"], "series": [
                           {"title": f"{n}-like, {title}",
                            "points": [(r["cache_fraction"], r[k][n])
                                       for r in ws]}
                           for n in pages for k, title in
                           (("measured", "timed phase"),
                            ("measured_run", "whole run"),
                            ("modelled", "AMAT model"))]})
    rep.plot("runtimes.png", "Kona against page-granular runtimes", panels)


# ---------------------------------------------------------------- main

def load_raw(path):
    try:
        with open(path) as f:
            raw = json.load(f)
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}")
    except ValueError as e:
        raise InputError(f"{path} is not valid JSON: {e}")
    if not isinstance(raw, dict) or not isinstance(raw.get("runs"), list):
        raise InputError(f'{path} has no "runs" list')
    runs = []
    for i, r in enumerate(raw["runs"]):
        if isinstance(r, dict) and all(isinstance(r.get(k), str) for k in
                                       ("group", "config", "workload")):
            runs.append(clean_run(r))
        else:
            print(f"report: run {i} lacks group/config/workload; ignored",
                  file=sys.stderr)
    meta = raw.get("meta")
    return meta if isinstance(meta, dict) else {}, runs


def clean_run(r):
    """The run with each field of its schema type, else None (or empty)."""
    typed = lambda k, t: r.get(k) if isinstance(r.get(k), t) else None
    metrics, block = typed("metrics", dict) or {}, num(r.get("block_size"))
    return dict(r, device=typed("device", str) or "",
                cache_fraction=num(r.get("cache_fraction")),
                block_size=block if block and block > 0 else None,
                primary=typed("primary", str),
                higher_is_better=typed("higher_is_better", bool) or False,
                metrics={k: m for k, m in metrics.items()
                         if isinstance(m, dict)},
                stats=typed("stats", dict), hist=typed("hist", list),
                windows=typed("windows", list))


def parse_latency(values):
    lat = dict(LATENCY)
    for v in values or []:
        if "=" in v and not os.path.isfile(v):
            items = [tuple(s.strip() for s in v.split("=", 1))]
        else:
            try:
                with open(v) as f:
                    items = json.load(f)
            except (OSError, ValueError) as e:
                raise InputError(f"--latency {v}: {e}")
            if not isinstance(items, dict):
                raise InputError(f"--latency {v}: not a JSON object")
            items = items.items()
        for key, ns in items:
            if key not in LATENCY:
                raise InputError(f"unknown latency key '{key}' (known: "
                                 f"{', '.join(LATENCY)})")
            try:
                lat[key] = float(ns)
            except (TypeError, ValueError):
                raise InputError(f"latency {key}: '{ns}' is not a number")
            if not math.isfinite(lat[key]) or lat[key] < 0:
                raise InputError(f"latency {key}: '{ns}' must be >= 0")
    return lat


def header(meta, runs):
    q = lambda k: str(meta.get(k, "?"))
    lines = ["# Kona-CXL benchmark report", "",
             f"- command: `{q('command')}`", f"- date: {q('date')}",
             f"- host: {q('host')}", f"- qemu: {q('qemu')}",
             f"- accel: {q('accel')}, window: {q('window_ms')} ms, "
             f"runs: {len(runs)}"]
    for m in meta.get("merged", []):
        what = (f"  - within it, {m.get('runs', '?')} runs of an earlier one"
                if m.get("within") else
                f"- with {m.get('runs', '?')} runs of an earlier run")
        lines.append(f"{what}: `{m.get('command', '?')}`, "
                     f"{m.get('date', '?')}, {m.get('bench_seconds', '?')} s"
                     + ("" if m.get("within") else
                        " (bench/collect.py --merge: this run measured the "
                        "others)"))
    if meta.get("smoke"):
        lines.append("- **smoke run**: tiny sizes, the numbers mean little")
    if meta.get("failed"):
        lines.append(f"- failed, left out: {' '.join(map(str, meta['failed']))}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], epilog="latency keys (ns): " +
        " ".join(f"{k}={v}" for k, v in LATENCY.items()))
    ap.add_argument("raw", help="RAW.json from bench/collect.py")
    ap.add_argument("outdir")
    ap.add_argument("--latency", action="append", metavar="FILE.json|KEY=NS",
                    help="override AMAT latencies (repeatable)")
    ap.add_argument("--require-plots", action="store_true",
                    help="exit 1 if a plot cannot be made")
    args = ap.parse_args(argv)
    try:
        lat = parse_latency(args.latency)
        meta, runs = load_raw(args.raw)
    except InputError as e:
        print(f"report: {e}", file=sys.stderr)
        return 2
    os.makedirs(args.outdir, exist_ok=True)
    gp = os.environ.get("GNUPLOT") or "gnuplot"
    gp = gp if os.sep in gp else shutil.which(gp)
    rep = Report(args.outdir, gp if gp and os.access(gp, os.X_OK) else None)
    rep.text(header(meta, runs))
    table_main(rep, runs)
    table_micro(rep, runs)
    table_amplification(rep, runs)
    table_windows(rep, runs, num(meta.get("window_ms")) or 1000)
    table_granularity(rep, runs)
    table_amat(rep, runs, lat)
    table_runtimes(rep, runs, lat)
    summary = "\n\n".join(rep.md) + "\n"
    with open(os.path.join(args.outdir, "summary.md"), "w") as f:
        f.write(summary)
    sys.stdout.write(summary)
    if rep.plot_failures:
        print(f"report: plots not made: {' '.join(rep.plot_failures)}",
              file=sys.stderr)
        return 1 if args.require_plots else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
