"""Plots bench/results/invoke.csv: throughput and latency per handler kind
against the number of connections. Usage: python bench/plot.py CSV PNG"""

import csv
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(source, target):
    series = defaultdict(list)
    with open(source) as f:
        for row in csv.DictReader(f):
            series[row["kind"]].append(
                (int(row["connections"]), float(row["round_trips_per_s"]), float(row["p50_us"]), float(row["p99_us"]))
            )
    figure, (throughput, latency) = plt.subplots(1, 2, figsize=(12, 4.5))
    for kind, points in series.items():
        points.sort()
        connections = [p[0] for p in points]
        throughput.plot(connections, [p[1] for p in points], marker="o", label=kind)
        line = latency.plot(connections, [p[3] / 1000 for p in points], marker="o", label=f"{kind} p99")[0]
        latency.plot(connections, [p[2] / 1000 for p in points], marker=".", linestyle=":", color=line.get_color())
    for axis, title, unit in [(throughput, "echo throughput", "round trips/s"), (latency, "echo latency (p99 solid, p50 dotted)", "ms")]:
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("connections")
        axis.set_ylabel(unit)
        axis.set_title(title)
        axis.grid(True, which="both", alpha=0.3)
    throughput.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(target, dpi=110)
    print(f"wrote {target}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
