#!/usr/bin/python3
"""Tests of bench/collect.py: guest logs to RAW.json, and --merge.

    /usr/bin/python3 bench/test_collect.py [-v]
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
COLLECT = os.path.join(HERE, "collect.py")


def guest_log(node, results):
    """What bench.sh prints for @results: {workload: (seconds, rc)}."""
    lines = ["[    1.000000] a kernel line"]
    for w, (secs, rc) in results.items():
        lines += [f"BENCH-BEGIN node={node} workload={w}",
                  f"RESULT workload={w} metric=seconds value={secs} unit=s"]
        if node != 0:
            lines.append(f"BENCH-STATS node={node} workload={w} "
                         f'{{"fetches": {int(secs * 10)}, "writeback-bytes": 64}}')
        lines.append(f"BENCH-END node={node} workload={w} rc={rc} seconds={secs}")
    return "\n".join(lines) + "\n"


class Collect(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def collect(self, name, guests, mib=1024, merge=()):
        """Run collect.py on @guests: [(log name, node, results, config)]."""
        manifest = os.path.join(self.dir, f"{name}.tsv")
        with open(manifest, "w") as m:
            for log, node, results, config in guests:
                with open(os.path.join(self.dir, log), "w") as f:
                    f.write(guest_log(node, results))
                node0 = config if node == 0 else "-"
                m.write("\t".join([log, "main", "kona-cxl", node0, config,
                                   "268435456", "4096", "25", "0", str(mib),
                                   "stores"]) + "\n")
        raw = os.path.join(self.dir, f"{name}.json")
        args = [sys.executable, COLLECT, manifest, raw, "--mib", str(mib),
                "--command", f"run {name}", "--seconds", "100"]
        for path in merge:
            args += ["--merge", path]
        p = subprocess.run(args, capture_output=True, text=True)
        return p, raw

    def load(self, raw):
        with open(raw) as f:
            return json.load(f)

    def test_logs_to_runs(self):
        p, raw = self.collect("a", [("a.log", 1, {"sort": (12.5, 0),
                                                   "cc": (3.0, 1)}, "kona-25")])
        self.assertEqual(p.returncode, 0, p.stderr)
        d = self.load(raw)
        self.assertEqual([(r["workload"], r["config"]) for r in d["runs"]],
                         [("sort", "kona-25")])
        self.assertEqual(d["runs"][0]["metrics"]["seconds"]["value"], 12.5)
        self.assertEqual(d["runs"][0]["stats"]["fetches"], 125)
        self.assertEqual(d["runs"][0]["tracking"], "stores")
        self.assertEqual(d["meta"]["failed"], ["cc@kona-25"])
        self.assertNotIn("merged", d["meta"])

    def test_merge_completes_an_earlier_run(self):
        # The earlier run: redis-seq measured, redis-rand failed (stopped),
        # sort never reached.
        _, early = self.collect("early", [
            ("e.log", 1, {"redis-seq": (1040.0, 0), "redis-rand": (5.0, 124)},
             "kona-25")])
        # This run: redis-rand and sort; cc fails now.
        p, raw = self.collect("late", [
            ("l.log", 1, {"redis-rand": (900.0, 0), "sort": (300.0, 0),
                          "cc": (1.0, 1)}, "kona-25")], merge=[early])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("1 from the run of", p.stderr)
        d = self.load(raw)
        got = {r["workload"]: r["metrics"]["seconds"]["value"] for r in d["runs"]}
        self.assertEqual(got, {"redis-seq": 1040.0, "redis-rand": 900.0,
                               "sort": 300.0})
        # The earlier failure is measured now; this run's stays.
        self.assertEqual(d["meta"]["failed"], ["cc@kona-25"])
        self.assertEqual(len(d["meta"]["merged"]), 1)
        m = d["meta"]["merged"][0]
        self.assertEqual((m["command"], m["runs"], m["bench_seconds"]),
                         ("run early", 1, 100))
        self.assertEqual(d["meta"]["command"], "run late")

    def test_merge_keeps_an_unmeasured_failure_and_chains(self):
        _, first = self.collect("first", [
            ("f.log", 1, {"sort": (1.0, 0), "cc": (1.0, 124)}, "kona-25")])
        _, second = self.collect("second", [
            ("s.log", 1, {"pagerank": (2.0, 0)}, "kona-25")], merge=[first])
        p, raw = self.collect("third", [
            ("t.log", 0, {"sort": (3.0, 0)}, "ram")], merge=[second])
        self.assertEqual(p.returncode, 0, p.stderr)
        d = self.load(raw)
        self.assertEqual(sorted((r["workload"], r["config"]) for r in d["runs"]),
                         [("pagerank", "kona-25"), ("sort", "kona-25"),
                          ("sort", "ram")])
        self.assertEqual(d["meta"]["failed"], ["cc@kona-25"])
        self.assertEqual([(m["command"], m["runs"], m.get("within", False))
                          for m in d["meta"]["merged"]],
                         [("run second", 2, False), ("run first", 1, True)])
        self.assertIn("2 from the run of", p.stderr)
        self.assertNotIn("1 from the run of", p.stderr)

    def test_merge_refuses_another_size(self):
        _, small = self.collect("small", [("s.log", 1, {"sort": (1.0, 0)},
                                           "kona-25")], mib=64)
        p, raw = self.collect("big", [("b.log", 1, {"cc": (1.0, 0)}, "kona-25")],
                              merge=[small])
        self.assertEqual(p.returncode, 2)
        self.assertIn("64 MiB", p.stderr)
        self.assertFalse(os.path.exists(raw))

    def test_merge_of_a_missing_file(self):
        p, _ = self.collect("x", [("x.log", 1, {"sort": (1.0, 0)}, "kona-25")],
                            merge=[os.path.join(self.dir, "nothing.json")])
        self.assertEqual(p.returncode, 2)
        self.assertIn("nothing.json", p.stderr)


if __name__ == "__main__":
    unittest.main()
