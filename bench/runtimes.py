"""Kona against page-granular far-memory runtimes, measured in one run.

The "runtimes" group of scripts/bench runs the same workloads on three
configurations of the same device, at the same cache sizes:
  kona-paper-PCT   tracking=exact, latency=kona-paper: Kona (3.11 us per
                   4 KiB fetch, dirty 64 B lines written back)
  legoos-PCT       writeback=pages, latency=legoos: a page runtime with a
                   10 us fault, every page holding a dirty line written whole
  infiniswap-PCT   writeback=pages, latency=infiniswap: the same, 40 us
compare() pairs them per workload and cache fraction: measured time (the
workload's primary metric, usually one timed phase), the time of the whole
run, write-back bytes, and what the AMAT model predicts from the Kona run's
own counters, next to the paper's claims. The counters cover the whole run
(bench.sh resets them just before it), so the whole run's ratio is the one
to hold against the model: a workload whose misses fall outside its timed
phase (PageRank builds its graph first) shows them only there.
Pure computation: bench/report.py renders it.
"""
import math

RUNTIMES = ("kona-paper", "legoos", "infiniswap")
# Page runtimes: (config prefix, AMAT latency key of their fault).
PAGE_RUNTIMES = (("legoos", "fault_10us"), ("infiniswap", "fault_40us"))
# The Kona paper's claims: AMAT this many times Kona's at 25% local.
PAPER_CLAIMS = {("legoos", 0.25): 1.7, ("infiniswap", 0.25): 5.0}


def runtime_of(run):
    """kona-paper / legoos / infiniswap from a config such as legoos-25."""
    name = run["config"].rsplit("-", 1)[0]
    return name if name in RUNTIMES else None


def _num(x):
    return x if isinstance(x, (int, float)) and math.isfinite(x) else None


def _metric(run, name):
    return _num(run["metrics"].get(name, {}).get("value"))


def _stat(run, key):
    return _num((run["stats"] or {}).get(key))


def _div(a, b):
    return a / b if a is not None and b else None


def amat(run, lat):
    """(Kona AMAT, {page runtime: AMAT}) in ns from a Kona run's counters:
    the same misses are the page runtime's faults (4 KiB blocks)."""
    hits, miss = _stat(run, "hits"), _stat(run, "misses")
    if hits is None or miss is None:
        return None, {}
    acc = hits + miss
    kona = _div(hits * lat["cache_link"] +
                miss * (lat["cache_link"] + lat["remote_4k"]), acc)
    page = {name: _div(hits * lat["local_dram"] +
                       miss * (lat["local_dram"] + lat[key]), acc)
            for name, key in PAGE_RUNTIMES}
    return kona, page


def speedup(kona, page, higher):
    """How many times faster Kona ran than the page runtime (> 1: Kona)."""
    if kona is None or page is None or kona <= 0 or page <= 0:
        return None
    return kona / page if higher else page / kona


def compare(runs, lat):
    """One dict per (workload, cache fraction) with all three runtimes."""
    rs = [r for r in runs if r["group"] == "runtimes" and runtime_of(r)
          and r["cache_fraction"] is not None]
    keys = list(dict.fromkeys((r["workload"], r["cache_fraction"])
                              for r in rs))
    keys.sort(key=lambda k: (k[0], -k[1]))
    out = []
    for w, frac in keys:
        by = {runtime_of(r): r for r in rs
              if r["workload"] == w and r["cache_fraction"] == frac}
        kona = by.get("kona-paper")
        if not kona:
            continue
        prim, higher = kona["primary"], kona["higher_is_better"]
        row = {"workload": w, "cache_fraction": frac, "metric": prim,
               "unit": kona["metrics"].get(prim, {}).get("unit", ""),
               "higher_is_better": higher,
               "value": {n: _metric(r, prim) for n, r in by.items()},
               "run_seconds": {n: _num(r.get("wall_seconds"))
                               for n, r in by.items()},
               "writeback_bytes": {n: _stat(r, "writeback-bytes")
                                   for n, r in by.items()},
               "fetches": {n: _stat(r, "fetches") for n, r in by.items()},
               "stall_model_ns": {n: _stat(r, "stall-model-ns")
                                  for n, r in by.items()}}
        k_amat, p_amat = amat(kona, lat)
        row["amat"] = dict(p_amat, **{"kona-paper": k_amat})
        row["measured"], row["modelled"], row["claim"] = {}, {}, {}
        row["measured_run"] = {}
        for name, _ in PAGE_RUNTIMES:
            row["measured"][name] = speedup(row["value"].get("kona-paper"),
                                            row["value"].get(name), higher)
            row["measured_run"][name] = speedup(
                row["run_seconds"].get("kona-paper"),
                row["run_seconds"].get(name), False)
            row["modelled"][name] = _div(p_amat.get(name), k_amat)
            row["claim"][name] = PAPER_CLAIMS.get((name, frac))
        out.append(row)
    return out
