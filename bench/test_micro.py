#!/usr/bin/python3
"""Tests of bench/micro.py (scripts/bench-micro's table) on hand-computed data.

    /usr/bin/python3 bench/test_micro.py [-v]
"""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
MICRO = os.path.join(HERE, "micro.py")
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True      # no bench/__pycache__
import micro  # noqa: E402

UNITS = {"seq-read": "MB/s", "seq-write": "MB/s", "memset": "MB/s",
         "chase": "ns", "first-touch": "us/page"}

# Per configuration, per metric, one value per round (3 rounds), chosen so
# that the medians and ratios are easy to check by hand; the rounds are
# out of order so that a median that does not sort would show.
DATA = {
    "ram": {"seq-read": [100, 300, 200], "seq-write": [50, 10, 30],
            "memset": [7, 7, 7], "chase": [300, 100, 200],
            "first-touch": [2, 4, 3]},
    "cxl-type3": {"seq-read": [10, 20, 40], "seq-write": [3, 3, 3],
                  "memset": [1, 2, 0.5], "chase": [800, 1000, 900],
                  "first-touch": [30, 40, 35]},
    "exact-fit": {"seq-read": [50, 40, 60], "seq-write": [6, 12, 9],
                  "memset": [0, 0, 0], "chase": [450, 450, 500],
                  "first-touch": [6, 6, 6]},
}
NAMES = ["ram", "cxl-type3", "exact-fit"]
# Medians of DATA, by hand.
MEDIANS = {
    "ram": {"seq-read": 200, "seq-write": 30, "memset": 7, "chase": 200,
            "first-touch": 3},
    "cxl-type3": {"seq-read": 20, "seq-write": 3, "memset": 1, "chase": 900,
                  "first-touch": 35},
    "exact-fit": {"seq-read": 50, "seq-write": 9, "memset": 0, "chase": 450,
                  "first-touch": 6},
}


def write_rounds(d, data, node=1):
    """NAME.R.txt files as scripts/bench-micro keeps them."""
    for name, metrics in data.items():
        rounds = len(next(iter(metrics.values())))
        for r in range(rounds):
            with open(os.path.join(d, f"{name}.{r + 1}.txt"), "w") as f:
                for m, vals in metrics.items():
                    f.write(f"RESULT node={node} metric={m} "
                            f"value={vals[r]:.3f} unit={UNITS[m]}\n")


class MicroTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="micro-test-")
        write_rounds(self.tmp, DATA)
        self.cols = {n: micro.load(self.tmp, n, 3) for n in NAMES}

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def test_medians(self):
        for n in NAMES:
            for m in micro.METRICS:
                self.assertEqual(self.cols[n][m], (MEDIANS[n][m], UNITS[m]),
                                 f"{n} {m}")

    def test_median_of_even_rounds(self):
        # Two rounds: the mean of the two.
        write_rounds(self.tmp, {"fast-25": {m: [1, 4] for m in UNITS}})
        cols = micro.load(self.tmp, "fast-25", 2)
        self.assertEqual(cols["seq-read"][0], 2.5)
        self.assertEqual(cols["chase"][0], 2.5)

    def test_ratios(self):
        c = self.cols
        r = micro.ratio
        # Higher is better: value / reference.
        self.assertAlmostEqual(r(c, "seq-read", 50, "ram"), 0.25)
        self.assertAlmostEqual(r(c, "seq-read", 50, "cxl-type3"), 2.5)
        self.assertAlmostEqual(r(c, "seq-write", 9, "ram"), 0.3)
        # Lower is better: reference / value.
        self.assertAlmostEqual(r(c, "chase", 450, "ram"), 200 / 450)
        self.assertAlmostEqual(r(c, "chase", 450, "cxl-type3"), 2.0)
        self.assertAlmostEqual(r(c, "first-touch", 6, "ram"), 0.5)
        self.assertAlmostEqual(r(c, "first-touch", 35, "ram"), 3 / 35)
        # A zero value, an absent reference, a zero reference: no ratio.
        self.assertIsNone(r(c, "memset", 0, "ram"))
        self.assertIsNone(r(c, "seq-read", 50, "window-fit"))
        self.assertIsNone(r(c, "memset", 7, "exact-fit"))

    def test_table_text(self):
        text = micro.table(self.cols, NAMES, "4", "tcg", 3)
        head = f"{'metric':<12}{'unit':<9}{'ram':>12}{'cxl-type3':>12}{'exact-fit':>12}"
        want = [
            "konabench, 4 MiB per run, tcg, median of 3 rounds; "
            "ratios > 1 are faster than the reference",
            "",
            head,
            "-" * 57,
            "seq-read    MB/s            200.0        20.0        50.0",
            "seq-write   MB/s             30.0         3.0         9.0",
            "memset      MB/s              7.0         1.0         0.0",
            "chase       ns              200.0       900.0       450.0",
            "first-touch us/page           3.0        35.0         6.0",
            "",
            "ratio to ram:",
            "seq-read                    1.000       0.100       0.250",
            "seq-write                   1.000       0.100       0.300",
            "memset                      1.000       0.143           -",
            "chase                       1.000       0.222       0.444",
            "first-touch                 1.000       0.086       0.500",
            "",
            "ratio to cxl-type3:",
            "seq-read                   10.000       1.000       2.500",
            "seq-write                  10.000       1.000       3.000",
            "memset                      7.000       1.000           -",
            "chase                       4.500       1.000       2.000",
            "first-touch                11.667       1.000       5.833",
        ]
        self.assertEqual(len(head), 57)
        self.assertEqual(text, "\n".join(want) + "\n")

    def test_no_reference(self):
        # Without ram and cxl-type3 among the names, only the medians.
        cols = {"exact-fit": self.cols["exact-fit"]}
        text = micro.table(cols, ["exact-fit"], "16", "kvm", 3)
        self.assertNotIn("ratio to", text)
        self.assertIn("konabench, 16 MiB per run, kvm, median of 3 rounds", text)
        self.assertEqual(len(text.splitlines()), 4 + len(micro.METRICS))

    def test_command_line(self):
        p = subprocess.run([sys.executable, MICRO, self.tmp, "4", "tcg", "3",
                            *NAMES], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(os.path.join(self.tmp, "table.txt")) as f:
            self.assertEqual(f.read(), p.stdout)
        self.assertEqual(p.stdout, micro.table(self.cols, NAMES, "4", "tcg", 3))
        p = subprocess.run([sys.executable, MICRO, self.tmp], capture_output=True,
                           text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("bench/micro.py DIR MIB ACCEL ROUNDS NAME", p.stderr)


if __name__ == "__main__":
    unittest.main()
