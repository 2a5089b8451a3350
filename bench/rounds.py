#!/usr/bin/env python3
"""Summarises rounds of one comparison: rounds.py TITLE ROUND.json...

Each file is one hyperfine invocation of the same commands: every command
but the last is a floor, and the last is measured against each. On this VM
a command's speed drifts from minute to minute by more than the
differences measured, and hyperfine times one command's runs before the
next's, so the commands run side by side in short rounds and each ratio is
taken within its round. The median of the rounds' ratios is the figure;
their range shows how far one round can be trusted; the medians of all
runs pooled are given beside.
"""
import json
import statistics
import sys


def main(title, paths):
    rounds = [{r["command"]: r for r in json.load(open(p))["results"]} for p in paths]
    names = list(rounds[0])
    floors, subject = names[:-1], names[-1]
    print(f"{title}: {len(rounds)} rounds of {len(rounds[0][subject]['times'])} runs")
    print("| round | " + " | ".join(names + [f"ratio to {f}" for f in floors]) + " |")
    print("|---" * (len(names) + len(floors) + 1) + "|")

    def row(label, ms):
        cells = [f"{ms[n]:.2f} ms" for n in names]
        cells += [f"{ms[subject] / ms[f]:.3f}x" for f in floors]
        print(f"| {label} | " + " | ".join(cells) + " |")

    ratios = {f: [] for f in floors}
    for i, results in enumerate(rounds, 1):
        ms = {n: results[n]["median"] * 1000 for n in names}
        for f in floors:
            ratios[f].append(ms[subject] / ms[f])
        row(i, ms)
    row("all", {n: statistics.median(t * 1000 for r in rounds for t in r[n]["times"]) for n in names})
    for f, rs in ratios.items():
        print(f"{subject} / {f}: median of rounds {statistics.median(rs):.3f}x "
              f"(range {min(rs):.3f}-{max(rs):.3f}x)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
