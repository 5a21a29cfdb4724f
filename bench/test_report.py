#!/usr/bin/python3
"""Tests of bench/report.py on a small synthetic RAW.json.

    /usr/bin/python3 bench/test_report.py [-v]
"""
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPORT = os.path.join(HERE, "report.py")
HAVE_GNUPLOT = shutil.which("gnuplot") is not None
MIB = 1 << 20


def kona_stats(hits, misses, reads, writes, block=4096, wb=64 * 1000, amp=8):
    return {"reads": reads, "writes": writes, "hits": hits, "misses": misses,
            "fetches": misses, "fetch-bytes": misses * block,
            "evictions": misses // 2, "writebacks": 10, "writeback-lines": wb // 64,
            "writeback-bytes": wb, "page-writeback-bytes": wb * amp,
            "hugepage-writeback-bytes": 4 * (2 << 20), "stall-ns": 12345}


def run(group, config, device, workload, metrics, primary, higher,
        frac=None, block=None, stats=None, hist=None, windows=None,
        wall=None):
    return {"group": group, "config": config, "device": device,
            "wall_seconds": wall,
            "cache_bytes": int(frac * 64 * MIB) if frac else None,
            "block_size": block, "cache_fraction": frac,
            "workload": workload, "data_bytes": 64 * MIB,
            "metrics": {k: {"value": v, "unit": u} for k, (v, u) in metrics.items()},
            "primary": primary, "higher_is_better": higher,
            "stats": stats, "hist": hist, "windows": windows}


def synthetic():
    """RAW.json data with hand-computable cases (see the tests)."""
    hist = [0] * 65
    hist[1], hist[8], hist[64] = 6, 2, 2          # mean (6+16+128)/10 = 15, 80% <= 8
    # Windows: amp4k 1 and 2 (the empty window is left out); aggregate
    # (1 + 4) * 4096 / ((64 + 128) * 64) = 5/3, 2 MiB: 2 * 2 MiB / 12288.
    windows = [{"lines": 64, "pages": 1, "hugepages": 1},
               {"lines": 0, "pages": 0, "hugepages": 0},
               {"lines": 128, "pages": 4, "hugepages": 1}]
    runs = []
    kona = [("kona-fit", 1.0, 10.0), ("kona-25", 0.25, 16.0),
            ("kona-10", 0.1, 20.0)]
    # sort: lower-is-better seconds; ram 10 s, cxl-type3 12.5 s.
    runs.append(run("main", "ram", "ram", "sort", {"seconds": (10.0, "s")},
                    "seconds", False))
    runs.append(run("main", "cxl-type3", "cxl-type3", "sort",
                    {"seconds": (12.5, "s")}, "seconds", False))
    for name, frac, secs in kona:   # kona-fit misses less
        st = kona_stats(*((995, 5) if frac == 1 else (900, 100)), 600, 400)
        runs.append(run("main", name, "kona-cxl", "sort",
                        {"seconds": (secs, "s")}, "seconds", False, frac, 4096,
                        st, hist, windows))
    # redis-random: sparser writes (amplification ~20), more windows.
    redis_hist = [0] * 65
    redis_hist[1], redis_hist[2], redis_hist[4] = 40, 10, 5
    redis_windows = [{"lines": 10 * i + 5, "pages": 3 * i + 4,
                      "hugepages": 1 + i // 4} for i in range(12)]
    # redis-random: higher-is-better throughput.
    for name, dev, frac, ops in [("ram", "ram", None, 1000.0),
                                 ("cxl-type3", "cxl-type3", None, 800.0),
                                 ("kona-fit", "kona-cxl", 1.0, 900.0),
                                 ("kona-25", "kona-cxl", 0.25, 600.0),
                                 ("kona-10", "kona-cxl", 0.1, 500.0)]:
        k = dev == "kona-cxl"
        runs.append(run("main", name, dev, "redis-random",
                        {"throughput": (ops, "ops/s"), "seconds": (5.0, "s")},
                        "throughput", True, frac, 4096 if k else None,
                        kona_stats(5000, int(5 / frac), 4000, 1050, amp=20)
                        if k else None, redis_hist if k else None,
                        redis_windows if k else None))
    for name, dev, frac, chase in [("ram", "ram", None, 100.0),
                                   ("cxl-type3", "cxl-type3", None, 200.0),
                                   ("kona-fit", "kona-cxl", 1.0, 250.0),
                                   ("kona-10", "kona-cxl", 0.1, 2500.0)]:
        k = dev == "kona-cxl"
        runs.append(run("main", name, dev, "konabench",
                        {"seq-write": (1000.0, "MB/s"), "seq-read": (2000.0, "MB/s"),
                         "memset": (3000.0, "MB/s"), "chase": (chase, "ns"),
                         "first-touch": (1.5, "us/page")},
                        "seq-read", True, frac, 4096 if k else None,
                        kona_stats(100, 10, 80, 30) if k else None))
    # Hand case: 90 hits, 10 misses, 100 accesses, block 4096.
    runs.append(run("cache-sweep", "cache-50", "kona-cxl", "sort",
                    {"seconds": (12.0, "s")}, "seconds", False, 0.5, 4096,
                    kona_stats(90, 10, 60, 40)))
    for block in (1024, 4096, 16384):
        runs.append(run("block-sweep", f"block-{block}", "kona-cxl", "sort",
                        {"seconds": (10.0 + block / 1024, "s")}, "seconds",
                        False, 0.25, block, kona_stats(900, 100, 600, 400, block)))
    # Kona against page runtimes, 25% cache: sort 10 / 15 / 40 s (whole
    # runs 12 / 20 / 60 s), redis 600 / 400 / 150 ops/s (whole runs 30 / 40
    # / no time); the Kona runs' counts are 900 hits, 100 misses.
    for rt, secs, ops, wb, wall, rwall in [
            ("kona-paper", 10.0, 600.0, 64 * 10, 12.0, 30.0),
            ("legoos", 15.0, 400.0, 4096 * 10, 20.0, 40.0),
            ("infiniswap", 40.0, 150.0, 4096 * 10, 60.0, None)]:
        runs.append(run("runtimes", f"{rt}-25", "kona-cxl", "sort",
                        {"seconds": (secs, "s")}, "seconds", False, 0.25, 4096,
                        kona_stats(900, 100, 600, 400, wb=wb, amp=1),
                        wall=wall))
        runs.append(run("runtimes", f"{rt}-25", "kona-cxl", "redis-random",
                        {"throughput": (ops, "ops/s")}, "throughput", True,
                        0.25, 4096, kona_stats(900, 100, 600, 400, wb=wb, amp=1),
                        wall=rwall))
    # The per-window figure's run (group windows).
    runs.append(run("windows", "windows-fit", "kona-cxl", "redis-random",
                    {"throughput": (700.0, "ops/s")}, "throughput", True, 1.0,
                    4096, kona_stats(900, 100, 600, 400), None, redis_windows))
    return {"meta": {"command": "scripts/bench --smoke", "date": "2024-01-01 00:00 UTC",
                     "host": "testhost: 4 CPUs", "qemu": "QEMU 9.0 (test)",
                     "smoke": True, "window_ms": 500, "accel": "tcg"},
            "runs": runs}


def report(raw_path, outdir, *args, env=None):
    return subprocess.run([sys.executable, REPORT, raw_path, outdir, *args],
                          capture_output=True, text=True, env=env, timeout=300)


def rows(path, **match):
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f)
                if all(r[k] == v for k, v in match.items())]


class ReportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="report-test-")
        cls.raw = os.path.join(cls.tmp, "raw.json")
        with open(cls.raw, "w") as f:
            json.dump(synthetic(), f)
        cls.out = os.path.join(cls.tmp, "out")
        cls.proc = report(cls.raw, cls.out)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def path(self, name):
        return os.path.join(self.out, name)

    def report_of(self, raw, name):
        """Report on RAW (written as NAME.json): (process, out dir, summary)."""
        path = os.path.join(self.tmp, name + ".json")
        with open(path, "w") as f:
            json.dump(raw, f)
        out = os.path.join(self.tmp, name)
        p = report(path, out)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(os.path.join(out, "summary.md")) as f:
            return p, out, f.read()

    @unittest.skipUnless(HAVE_GNUPLOT, "gnuplot not installed")
    def test_windows_bytes_plot(self):
        with open(self.path("windows-bytes.png"), "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        with open(self.path("summary.md")) as f:
            self.assertIn("(windows-bytes.png)", f.read())

    def test_runtimes(self):
        # AMAT (ns): Kona (900 x 130 + 100 x (130 + 3110)) / 1000 = 441;
        # 10 us fault (900 x 82 + 100 x 10082) / 1000 = 1082; 40 us 4082.
        sort = rows(self.path("runtimes.csv"), workload="sort")[0]
        self.assertAlmostEqual(float(sort["amat_kona_ns"]), 441.0)
        self.assertAlmostEqual(float(sort["amat_legoos_ns"]), 1082.0)
        self.assertAlmostEqual(float(sort["amat_infiniswap_ns"]), 4082.0)
        self.assertAlmostEqual(float(sort["legoos_x_modelled"]), 1082 / 441, 4)
        self.assertAlmostEqual(float(sort["infiniswap_x_modelled"]), 4082 / 441, 4)
        # Measured: lower-is-better seconds, page time / Kona time.
        self.assertAlmostEqual(float(sort["legoos_x_measured"]), 1.5)
        self.assertAlmostEqual(float(sort["infiniswap_x_measured"]), 4.0)
        # The whole run, the span the counters cover: page s / Kona s.
        self.assertAlmostEqual(float(sort["kona_run_s"]), 12.0)
        self.assertAlmostEqual(float(sort["legoos_x_run"]), 20 / 12, 4)
        self.assertAlmostEqual(float(sort["infiniswap_x_run"]), 5.0)
        self.assertEqual(int(sort["writeback_kona"]), 640)
        self.assertEqual(int(sort["writeback_legoos"]), 40960)
        # Higher-is-better throughput: Kona ops / page ops.
        redis = rows(self.path("runtimes.csv"), workload="redis-random")[0]
        self.assertAlmostEqual(float(redis["legoos_x_measured"]), 1.5)
        self.assertAlmostEqual(float(redis["infiniswap_x_measured"]), 4.0)
        # A whole run is time whatever the metric; one without it is blank.
        self.assertAlmostEqual(float(redis["legoos_x_run"]), 40 / 30, 4)
        self.assertEqual(redis["infiniswap_x_run"], "")
        with open(self.path("summary.md")) as f:
            summary = f.read()
        self.assertIn("## 7. Kona against page-granular runtimes, measured",
                      summary)
        self.assertIn("| 1.70x |", summary)    # the paper's claim at 25%
        self.assertIn("| 5.00x |", summary)
        self.assertIn("| 1.67x |", summary)    # sort, LegoOS, whole run

    def test_exit_and_files(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr)
        for name in ("summary.md", "main.csv", "micro.csv", "amplification.csv",
                     "histogram.csv", "windows.csv", "windows-summary.csv",
                     "granularity.csv", "amat.csv", "runtimes.csv"):
            self.assertTrue(os.path.getsize(self.path(name)) > 0, name)
        with open(self.path("summary.md")) as f:
            summary = f.read()
        for s in ("scripts/bench --smoke", "2024-01-01", "testhost",
                  "QEMU 9.0 (test)", "## 1. Workloads", "## 6. Modelled"):
            self.assertIn(s, summary)
        self.assertIn("## 1. Workloads", self.proc.stdout)

    def test_merged_runs_named(self):
        raw = synthetic()
        raw["meta"]["merged"] = [
            {"command": "KONA_BENCH_MIB=1024 scripts/bench",
             "date": "2023-12-31 10:00 UTC", "bench_seconds": 4346, "runs": 21},
            {"command": "first", "date": "2023-12-30 10:00 UTC",
             "bench_seconds": 100, "runs": 3, "within": True}]
        _, _, summary = self.report_of(raw, "merged")
        self.assertIn("- with 21 runs of an earlier run: "
                      "`KONA_BENCH_MIB=1024 scripts/bench`, 2023-12-31 10:00 UTC, "
                      "4346 s", summary)
        self.assertIn("4346 s (bench/collect.py --merge: this run measured the "
                      "others)\n  - within it, 3 runs of an earlier one: `first`, "
                      "2023-12-30 10:00 UTC, 100 s", summary)
        with open(self.path("summary.md")) as f:
            self.assertNotIn("earlier run", f.read())

    def test_amat_hand_case(self):
        r = rows(self.path("amat.csv"), workload="sort", config="cache-50")
        self.assertEqual(len(r), 1)
        # (90*130 + 10*(130+3110))/100 and (90*82 + 10*(82+10000))/100
        self.assertEqual(float(r[0]["amat_kona_ns"]), 441.0)
        self.assertEqual(float(r[0]["amat_page_fault_10us_ns"]), 1082.0)
        self.assertEqual(float(r[0]["amat_page_fault_40us_ns"]), 4082.0)

    def test_amat_main_runs_and_interpolation(self):
        # Main kona runs count too: (900*82 + 100*(82+10000))/1000.
        r = rows(self.path("amat.csv"), workload="sort", config="kona-25")[0]
        self.assertEqual(float(r["amat_page_fault_10us_ns"]), 1082.0)
        sys.path.insert(0, HERE)
        sys.dont_write_bytecode = True      # no bench/__pycache__
        import report as rp
        lat = rp.LATENCY
        self.assertAlmostEqual(rp.remote_ns(lat, 1024), 2420 + 690 * 4 / 6)
        self.assertAlmostEqual(rp.remote_ns(lat, 16384), 3110 + 6170 / 2)
        self.assertEqual(rp.remote_ns(lat, 32), 2420)
        self.assertEqual(rp.remote_ns(lat, 1 << 20), 9280)
        # block-sweep runs are not in the AMAT table.
        self.assertFalse(rows(self.path("amat.csv"), config="block-1024"))
        self.assertTrue(rows(self.path("granularity.csv"), block_size="1024"))

    def test_ratio_direction(self):
        sort = {r["config"]: r for r in rows(self.path("main.csv"), workload="sort")}
        self.assertAlmostEqual(float(sort["kona-10"]["ratio_vs_ram"]), 0.5)
        self.assertAlmostEqual(float(sort["kona-10"]["ratio_vs_cxl"]), 0.625)
        self.assertAlmostEqual(float(sort["cxl-type3"]["ratio_vs_ram"]), 0.8)
        redis = {r["config"]: r for r in rows(self.path("main.csv"),
                                              workload="redis-random")}
        self.assertAlmostEqual(float(redis["kona-10"]["ratio_vs_ram"]), 0.5)
        self.assertAlmostEqual(float(redis["kona-10"]["ratio_vs_cxl"]), 0.625)
        chase = {r["config"]: r for r in rows(self.path("micro.csv"),
                                              metric="chase")}
        self.assertAlmostEqual(float(chase["kona-10"]["ratio_vs_ram"]), 0.04)
        self.assertEqual(chase["kona-10"]["regime"], "misses")
        self.assertEqual(chase["kona-fit"]["regime"], "resident")
        self.assertFalse(rows(self.path("main.csv"), workload="konabench"))

    def test_windows(self):
        s = rows(self.path("windows-summary.csv"), workload="sort",
                 config="kona-10")[0]
        self.assertEqual(s["windows"], "3")
        self.assertEqual(s["windows_with_lines"], "2")
        self.assertAlmostEqual(float(s["amp4k_aggregate"]), 5 / 3, places=4)
        self.assertAlmostEqual(float(s["amp4k_median"]), 1.5)
        self.assertAlmostEqual(float(s["amp4k_max"]), 2.0)
        self.assertAlmostEqual(float(s["amp2m_aggregate"]), 4 * MIB / 12288,
                               places=2)
        w = rows(self.path("windows.csv"), workload="sort", config="kona-10")
        self.assertEqual([r["amp4k"] for r in w], ["1", "", "2"])

    def test_amplification(self):
        a = rows(self.path("amplification.csv"), workload="sort",
                 config="kona-10")[0]
        self.assertEqual(a["amp_4k"], "8")
        self.assertAlmostEqual(float(a["mean_dirty_lines_per_page"]), 15.0)
        self.assertAlmostEqual(float(a["share_pages_le_8_lines"]), 0.8)
        self.assertEqual(len(rows(self.path("histogram.csv"), workload="sort",
                                  config="kona-10")), 64)
        # No per-eviction 2 MiB counterfactual (it overstates by up to 512x):
        # 2 MiB pages are compared per window only.
        self.assertNotIn("amp_2m", a)
        with open(self.path("summary.md")) as f:
            section3 = f.read().split("## 3.")[1].split("## 4.")[0]
        self.assertNotIn("2 MiB amp", section3)

    def test_latency_override(self):
        out = os.path.join(self.tmp, "lat")
        p = report(self.raw, out, "--latency", "remote_4k=1000")
        self.assertEqual(p.returncode, 0, p.stderr)
        r = rows(os.path.join(out, "amat.csv"), workload="sort",
                 config="cache-50")[0]
        self.assertEqual(float(r["amat_kona_ns"]), 230.0)   # (11700+11300)/100
        lat = os.path.join(self.tmp, "lat.json")
        with open(lat, "w") as f:
            json.dump({"fault_10us": 20000}, f)
        p = report(self.raw, out, "--latency", lat)
        self.assertEqual(p.returncode, 0, p.stderr)
        r = rows(os.path.join(out, "amat.csv"), workload="sort",
                 config="cache-50")[0]
        self.assertEqual(float(r["amat_page_fault_10us_ns"]), 2082.0)
        self.assertEqual(float(r["amat_kona_ns"]), 441.0)

    def test_bad_latency_key(self):
        p = report(self.raw, os.path.join(self.tmp, "bad"), "--latency",
                   "remote_1k=5")
        self.assertEqual(p.returncode, 2)
        self.assertIn("remote_1k", p.stderr)

    def test_invalid_input(self):
        bad = os.path.join(self.tmp, "bad.json")
        for text in ("not json {", '{"meta": {}}', "[1, 2]"):
            with open(bad, "w") as f:
                f.write(text)
            p = report(bad, os.path.join(self.tmp, "bad-out"))
            self.assertEqual(p.returncode, 2, text)
            self.assertIn("report:", p.stderr)

    def test_missing_groups(self):
        raw = synthetic()
        raw["runs"] = [r for r in raw["runs"] if r["device"] == "ram"]
        _, out, summary = self.report_of(raw, "ram-only")
        self.assertIn("block-sweep; table omitted", summary)
        self.assertFalse(os.path.exists(os.path.join(out, "amat.csv")))

    def test_division_by_zero(self):
        raw = synthetic()
        for r in raw["runs"]:
            if r["stats"]:
                r["stats"].update(reads=0, writes=0, **{"writeback-bytes": 0})
        p, out, _ = self.report_of(raw, "zero")
        r = rows(os.path.join(out, "amat.csv"), config="cache-50")[0]
        self.assertEqual(r["amat_kona_ns"], "")
        self.assertIn("| - |", p.stdout)

    def test_groups_sizes_and_modes(self):
        """The default run's layout: main at 64 MiB with tracking=fast,
        the device models at 3 MiB; every table says which is which, and
        the AMAT model takes only exactly counted runs."""
        raw = synthetic()
        for r in raw["runs"]:
            if r["group"] == "main" and r["device"] == "kona-cxl":
                r["tracking"] = "fast"
        devices = [dict(r, group="devices", data_bytes=3 * MIB,
                        tracking="exact" if r["device"] == "kona-cxl" else None,
                        config={"kona-fit": "exact-fit"}.get(r["config"],
                                                             r["config"]))
                   for r in raw["runs"] if r["group"] == "main"
                   and r["config"] in ("ram", "cxl-type3", "kona-fit")]
        raw["runs"] = [r for r in raw["runs"] if not (
            r["group"] == "main" and r["device"] == "cxl-type3")] + devices
        _, out, summary = self.report_of(raw, "groups")
        self.assertIn("group main): 64 MiB per workload; kona-fit, kona-25, "
                      "kona-10: tracking=fast", summary)
        self.assertIn("### The device models side by side (group devices)",
                      summary)
        self.assertIn("3 MiB per workload; exact-fit: tracking=exact", summary)
        main = {r["config"]: r for r in rows(os.path.join(out, "main.csv"),
                                             workload="sort")}
        self.assertNotIn("cxl-type3", main)
        self.assertEqual(main["kona-25"]["tracking"], "fast")
        dev = {r["config"]: r for r in rows(os.path.join(out, "devices.csv"),
                                            workload="sort")}
        self.assertEqual(set(dev), {"ram", "cxl-type3", "exact-fit"})
        # ram 10 s, exact-fit 10 s: 1.0x; cxl-type3 12.5 s: 1.25x.
        self.assertAlmostEqual(float(dev["exact-fit"]["ratio_vs_cxl"]), 1.25)
        # The fast runs count no hits: not in the AMAT table; the cache
        # sweep's exact runs are.
        amat = rows(os.path.join(out, "amat.csv"), workload="sort")
        self.assertFalse([r for r in amat if r["group"] == "main"])
        self.assertTrue([r for r in amat if r["config"] == "cache-50"])
        # The amplification table is main's, labelled with its mode.
        self.assertIn("Group main: 64 MiB per workload", summary)
        self.assertIn("tracking=fast: resident data as guest RAM", summary)

    def test_writeback_figures_exact(self):
        """Group main timed with tracking=fast at the fitting cache and
        counted by tracking=stores at the smaller ones: the write-back
        table takes only the exactly counted runs, and says so."""
        raw = synthetic()
        for r in raw["runs"]:
            if r["group"] == "main" and r["device"] == "kona-cxl":
                r["tracking"] = "fast" if r["config"] == "kona-fit" else "stores"
        _, out, summary = self.report_of(raw, "exact-writeback")
        section3 = summary.split("## 3.")[1].split("## 4.")[0]
        self.assertIn("kona-25, kona-10: tracking=stores", section3)
        self.assertIn("Every dirty line counted exactly (kona-fit: "
                      "tracking=fast, left out here)", section3)
        amp = rows(os.path.join(out, "amplification.csv"))
        self.assertEqual({r["config"] for r in amp}, {"kona-25", "kona-10"})
        # Table 1 still shows every configuration, each with its mode.
        main = {r["config"]: r["tracking"] for r in
                rows(os.path.join(out, "main.csv"), workload="sort")}
        self.assertEqual(main["kona-fit"], "fast")
        self.assertEqual(main["kona-25"], "stores")

    @unittest.skipUnless(HAVE_GNUPLOT, "gnuplot is not installed")
    def test_plots(self):
        self.assertNotIn("skipped", self.proc.stderr)
        for name in ("histogram.png", "amplification.png", "windows.png",
                     "granularity.png", "amat.png"):
            with open(self.path(name), "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", name)
            with open(self.path("summary.md")) as f:
                self.assertIn(f"]({name})", f.read())

    def test_no_gnuplot(self):
        env = dict(os.environ, GNUPLOT="/nonexistent/gnuplot")
        out = os.path.join(self.tmp, "noplot")
        p = report(self.raw, out, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("plots skipped", p.stderr)
        self.assertTrue(os.path.exists(os.path.join(out, "amat.csv")))
        self.assertFalse(os.path.exists(os.path.join(out, "amat.png")))
        p = report(self.raw, out, "--require-plots", env=env)
        self.assertEqual(p.returncode, 1)


if __name__ == "__main__":
    unittest.main()
