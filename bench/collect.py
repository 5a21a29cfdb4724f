#!/usr/bin/python3
"""Gather the benchmark guests' console output into one RAW.json.

    bench/collect.py MANIFEST RAW.json [--command C] [--qemu Q] [--mib N]
                     [--window-ms MS] [--seconds S] [--smoke]
                     [--merge EARLIER.json ...]

MANIFEST (written by scripts/bench) has one tab-separated line per guest:
    log group device node0-config kona-config cache block percent status
    [mib [tracking]]
and each log holds what guest-runtime/workloads/bench.sh printed:
    BENCH-BEGIN node=N workload=W
    RESULT workload=W metric=M value=V unit=U
    BENCH-STATS node=N workload=W {konactl stats --json}
    BENCH-WINDOWS node=N workload=W {konactl windows --json}
    BENCH-END node=N workload=W rc=R seconds=S
RAW.json is what bench/report.py reads (its docstring has the schema).
Node 0 is the node0 config (plain RAM); any other node is the CXL device.
A workload that failed (rc != 0) is left out and listed in meta.failed.

--merge completes an earlier run that stopped or failed part-way (a 1 GiB
group main takes hours): RAW.json gets this run's results and, for every
(group, configuration, workload) this run did not measure, the earlier
run's. An earlier failure stays listed only if this run did not measure
that workload either. meta.merged names each earlier run (command, date,
seconds; "within" for a run the earlier one had merged itself), so that
the report says which numbers came from which run.
"""
import argparse
import datetime
import json
import os
import platform
import re
import sys

# The metric the tables use per workload, and whether higher is better.
PRIMARY = {
    "redis-seq": ("ops", True), "redis-rand": ("ops", True),
    "stress-seq": ("ops", True), "stress-rand": ("ops", True),
    "konabench": ("seq-read", True),
}
DEFAULT_PRIMARY = ("seconds", False)

KV = re.compile(r"(\S+?)=(\S+)")
LINE = re.compile(r"^(BENCH-BEGIN|BENCH-END|BENCH-STATS|BENCH-WINDOWS|RESULT) (.*)$")


def fields(text):
    return dict(KV.findall(text))


def parse_log(path):
    """(node, workload) -> {metrics, stats, hist, windows, rc, seconds}."""
    out, cur = {}, None
    with open(path, errors="replace") as f:
        for raw in f:
            m = LINE.match(raw.strip().replace("\r", ""))
            if not m:
                continue
            kind, rest = m.groups()
            if kind == "BENCH-BEGIN":
                kv = fields(rest)
                cur = {"node": int(kv["node"]), "workload": kv["workload"],
                       "metrics": {}, "stats": None, "hist": None,
                       "windows": None, "rc": None, "seconds": None}
                out[(cur["node"], cur["workload"])] = cur
            elif cur is None:
                continue
            elif kind == "RESULT":
                kv = fields(rest)
                try:
                    cur["metrics"][kv["metric"]] = {
                        "value": float(kv["value"]), "unit": kv.get("unit", "")}
                except (KeyError, ValueError):
                    pass
            elif kind in ("BENCH-STATS", "BENCH-WINDOWS"):
                body = rest[rest.index("{"):] if "{" in rest else "null"
                try:
                    data = json.loads(body)
                except ValueError:
                    data = None
                if kind == "BENCH-STATS" and data:
                    cur["hist"] = data.pop("dirty-lines-per-page", None)
                    cur["stats"] = data
                elif data:
                    cur["windows"] = [
                        {"lines": w[0], "pages": w[1], "hugepages": w[2]}
                        for w in data.get("windows", [])]
            elif kind == "BENCH-END":
                kv = fields(rest)
                cur["rc"] = int(kv.get("rc", "1"))
                cur["seconds"] = float(kv.get("seconds", "nan"))
                cur = None
    return out


def collect(manifest):
    runs, failed = [], []
    base = os.path.dirname(manifest)
    with open(manifest) as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) not in (9, 10, 11):
                continue
            log, group, device, node0, kona, cache, block, pct, _ = cols[:9]
            # The guest's data set and kona-cxl's tracking mode, if the
            # manifest has them (10th and 11th columns).
            mib = int(cols[9]) if len(cols) >= 10 and cols[9].isdigit() else None
            mode = cols[10] if len(cols) == 11 and cols[10] != "-" else None
            for (node, workload), r in parse_log(os.path.join(base, log)).items():
                config = node0 if node == 0 else kona
                if r["rc"] != 0:
                    failed.append(f"{workload}@{config}")
                    continue
                dev = "ram" if node == 0 else device
                primary, higher = PRIMARY.get(workload, DEFAULT_PRIMARY)
                metrics = r["metrics"]
                if "seconds" not in metrics and r["seconds"] is not None \
                        and workload != "konabench":
                    metrics["seconds"] = {"value": r["seconds"], "unit": "s"}
                kona_dev = dev == "kona-cxl"
                runs.append({
                    "group": group, "config": config, "device": dev,
                    "cache_bytes": int(cache) if kona_dev else None,
                    "block_size": int(block) if kona_dev else None,
                    "cache_fraction": int(pct) / 100 if kona_dev else None,
                    "tracking": (mode or "exact") if kona_dev else None,
                    "data_bytes": mib << 20 if mib else None,
                    "workload": workload, "metrics": metrics,
                    "primary": primary, "higher_is_better": higher,
                    "stats": r["stats"] if kona_dev else None,
                    "hist": r["hist"] if kona_dev else None,
                    "windows": r["windows"] if kona_dev else None,
                    "wall_seconds": r["seconds"],
                })
    return runs, failed


def run_key(run):
    return (run["group"], run["config"], run["workload"])


def merge(raw, earlier):
    """Add to @raw the runs of @earlier (a RAW.json dict) that @raw lacks,
    the earlier failures it did not measure again, and a meta.merged entry;
    the data sets must be the same size."""
    meta, old = raw["meta"], earlier["meta"]
    if old.get("data_mib") != meta.get("data_mib"):
        raise ValueError(f"--merge: the earlier run measured "
                         f"{old.get('data_mib')} MiB per workload, this one "
                         f"{meta.get('data_mib')} MiB")
    have = {run_key(r) for r in raw["runs"]}
    kept = [r for r in earlier["runs"] if run_key(r) not in have]
    raw["runs"] = kept + raw["runs"]
    measured = {f"{r['workload']}@{r['config']}" for r in raw["runs"]}
    again = set(meta.get("failed", []))
    meta["failed"] = meta.get("failed", []) + [
        f for f in old.get("failed", []) if f not in measured and f not in again]
    # The runs the earlier one had merged itself came with it: listed
    # after it, as within it, with the counts of that merge.
    within = [dict(m, within=True) for m in old.get("merged", [])]
    meta["merged"] = meta.get("merged", []) + [{
        "command": old.get("command"), "date": old.get("date"),
        "bench_seconds": old.get("bench_seconds"), "runs": len(kept)}] + within
    return raw


def cpu_model():
    """", CPU model (cache)" from /proc/cpuinfo, or "": the same kernel
    on another host CPU runs TCG guests at another speed, and a report
    must say which it ran on."""
    try:
        with open("/proc/cpuinfo") as f:
            info = dict(line.split(":", 1) for line in f
                        if ":" in line and line.strip())
    except OSError:
        return ""
    model = info.get("model name\t", "").strip()
    cache = info.get("cache size\t", "").strip()
    if not model:
        return ""
    return f", {model}" + (f" ({cache} cache)" if cache else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("manifest")
    ap.add_argument("raw")
    ap.add_argument("--command", default="scripts/bench")
    ap.add_argument("--qemu", default="")
    ap.add_argument("--mib", type=int, default=0)
    ap.add_argument("--window-ms", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=0)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--merge", action="append", default=[],
                    metavar="EARLIER.json")
    args = ap.parse_args()

    runs, failed = collect(args.manifest)
    for r in runs:
        r["data_bytes"] = r.get("data_bytes") or args.mib << 20
    raw = {
        "meta": {
            "command": args.command,
            "date": datetime.datetime.now(datetime.timezone.utc)
                    .strftime("%Y-%m-%d %H:%M UTC"),
            "host": f"{platform.node()}: {os.cpu_count()} CPUs, "
                    f"{platform.machine()}, Linux {platform.release()}"
                    f"{cpu_model()}",
            "qemu": args.qemu, "smoke": args.smoke, "accel": "tcg",
            "window_ms": args.window_ms, "data_mib": args.mib,
            "bench_seconds": args.seconds, "failed": failed,
        },
        "runs": runs,
    }
    for path in args.merge:
        try:
            with open(path) as f:
                merge(raw, json.load(f))
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"collect: --merge {path}: {e}", file=sys.stderr)
            return 2
    with open(args.raw, "w") as f:
        json.dump(raw, f, indent=1)
    print(f"collect: {len(runs)} runs from {args.manifest}"
          + "".join(f", {m['runs']} from the run of {m['date']}"
                    for m in raw["meta"].get("merged", [])
                    if not m.get("within"))
          + (f"; failed: {' '.join(failed)}" if failed else ""),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
