#!/usr/bin/python3
"""scripts/bench-micro's table: konabench medians over rounds, and ratios.

    bench/micro.py DIR MIB ACCEL ROUNDS NAME...

DIR holds NAME.R.txt for every configuration NAME and round R (1..ROUNDS),
each with konabench's lines for one guest node:
    RESULT node=N metric=M value=V unit=U
For every metric the median over the rounds is shown per configuration,
then, for the references "ram" and "cxl-type3" (if they are among the
names), each configuration's ratio to the reference: value / reference for
the bandwidths, reference / value for the metrics where lower is better
(latencies), so > 1 always means faster.  A ratio that cannot be computed
(a zero value or reference) is "-".  The table is printed and written to
DIR/table.txt.
"""
import statistics
import sys

METRICS = ["seq-read", "seq-write", "memset", "chase", "first-touch"]
LOWER_BETTER = {"chase", "first-touch"}
REFERENCES = ("ram", "cxl-type3")


def load(d, name, rounds):
    """metric -> (median over the rounds, unit) of configuration NAME."""
    vals, units = {}, {}
    for r in range(1, rounds + 1):
        with open(f"{d}/{name}.{r}.txt") as f:
            for line in f:
                kv = dict(w.split("=", 1) for w in line.split()[1:])
                vals.setdefault(kv["metric"], []).append(float(kv["value"]))
                units[kv["metric"]] = kv["unit"]
    return {m: (statistics.median(v), units[m]) for m, v in vals.items()}


def ratio(cols, metric, value, ref):
    """Performance ratio of VALUE to the reference's median: > 1 is faster.
    None without the reference, or where it would divide by zero."""
    if ref not in cols or not value:
        return None
    r = cols[ref][metric][0]
    if metric in LOWER_BETTER:
        return r / value
    return value / r if r else None


def table(cols, names, mib, accel, rounds):
    """The text of the table (COLS: name -> load()'s result)."""
    lines = [f"konabench, {mib} MiB per run, {accel}, median of {rounds} "
             "rounds; ratios > 1 are faster than the reference", ""]
    head = f"{'metric':<12}{'unit':<9}" + "".join(f"{n:>12}" for n in names)
    lines += [head, "-" * len(head)]
    for m in METRICS:
        lines.append(f"{m:<12}{cols[names[0]][m][1]:<9}" +
                     "".join(f"{cols[n][m][0]:>12.1f}" for n in names))
    for ref in REFERENCES:
        if ref not in cols:
            continue
        lines += ["", f"ratio to {ref}:"]
        for m in METRICS:
            cells = [ratio(cols, m, cols[n][m][0], ref) for n in names]
            lines.append(f"{m:<12}{'':<9}" + "".join(
                f"{c:>12.3f}" if c is not None else f"{'-':>12}" for c in cells))
    return "\n".join(lines) + "\n"


def main(argv):
    if len(argv) < 6:
        sys.exit(__doc__)
    d, mib, accel, rounds = argv[1], argv[2], argv[3], int(argv[4])
    names = argv[5:]
    cols = {n: load(d, n, rounds) for n in names}
    text = table(cols, names, mib, accel, rounds)
    with open(f"{d}/table.txt", "w") as f:
        f.write(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
