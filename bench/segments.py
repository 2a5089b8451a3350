#!/usr/bin/env python3
"""Segments of `run --rm IMG true` from the scheduler's exec, fork and exit
events (`perf script` of sched:sched_process_{exec,fork,exit}).

Usage: segments.py STRATA_PATH RUNC_PATH RUNC_TXT STRATA_TXT

RUNC_TXT: raw `runc run` in a loop; STRATA_TXT: `strata run --rm` in a
loop. Prints, per segment, the median, p10 and p90 in ms over the runs
that show every event (the first two runs of each are left out).

`run` starts runc early, before the container is made, and runc waits
for its config at a gate in the bundle: that wait shows in "runc exec ->
runc init", beside raw runc's own time for it, and the last line gives
what Strata adds to a run in all.

"runc init -> bootstrap" is the step where runc puts its init process in
the container's cgroups. Unless the host's cgroups favour dynamic changes
(`favordynmods`), the kernel makes that move wait for an RCU grace period
(9-14 ms here) when no other move happened in the last 15 ms or so: its
time depends on how closely runs follow each other (bench/RESULTS.md,
issue 3, stop 25).
"""
import re
import statistics
import sys

EVENT = re.compile(r"\s*(.*?)\s+(\d+)\s+\[\d+\]\s+([\d.]+): sched:(\w+): (.*)")


def events(path):
    """(ms, comm, pid, kind, details) per event line."""
    for line in open(path):
        m = EVENT.match(line)
        if m:
            comm, pid, secs, kind, rest = m.groups()
            yield float(secs) * 1000, comm, int(pid), kind, rest


def exec_of(rest):
    """The file an exec event ran."""
    return rest.split()[0].removeprefix("filename=")


def runs(path, starter):
    """One dict of event times per run, a run starting at an exec of
    `starter`: its fork of the monitor (strata's first fork), runc's exec
    and exit, the container's `true` exec and exit, the starter's exit."""
    found, run = [], None
    for t, comm, pid, kind, rest in events(path):
        if kind == "sched_process_exec" and exec_of(rest) == starter:
            run = {"start": t, "pid": pid}
            found.append(run)
        if run is None:
            continue
        if kind == "sched_process_fork" and pid == run["pid"]:
            run.setdefault("monitor", t)
        elif kind == "sched_process_exec":
            if exec_of(rest).endswith("/runc") and "runc" not in run:
                run["runc"], run["runc_pid"] = t, pid
            elif exec_of(rest) == "/bin/true":
                run["true"] = t
            elif "runc" in run and "bootstrap" not in run:
                # runc's init: /proc/self/exe, then maybe a copy of it.
                run["init"] = t
        elif kind == "sched_process_fork" and comm.startswith("runc:[0:PARENT]"):
            run.setdefault("bootstrap", t)
        elif kind == "sched_process_exit":
            if comm == "true":
                run["true_exit"] = t
            if pid == run.get("runc_pid"):
                run["runc_exit"] = t
            if pid == run["pid"]:
                run["exit"] = t
    return found[2:]


def report(title, found, segments):
    print(title)
    for name, a, b in segments:
        times = sorted(r[b] - r[a] for r in found if a in r and b in r)
        if not times:
            continue
        p10, p90 = times[len(times) // 10], times[len(times) * 9 // 10]
        median = statistics.median(times)
        print(f"  {name:44s} {median:7.2f}  (p10 {p10:6.2f}, p90 {p90:6.2f}, n={len(times)})")


RUNC = [
    ("runc exec -> `true` exec", "runc", "true"),
    ("  of which runc exec -> runc init", "runc", "init"),
    ("  of which runc init -> bootstrap (cgroups)", "init", "bootstrap"),
    ("`true` exec -> exit", "true", "true_exit"),
    ("`true` exit -> runc exit", "true_exit", "runc_exit"),
    ("runc in all", "runc", "runc_exit"),
]
STRATA = [
    ("strata exec -> monitor forked", "start", "monitor"),
    ("monitor forked -> runc exec", "monitor", "runc"),
    *RUNC,
    ("runc exit -> strata exit", "runc_exit", "exit"),
    ("strata in all", "start", "exit"),
]


def main():
    strata, runc, runc_txt, strata_txt = sys.argv[1:]
    # A run of raw runc starts at runc's exec, which is its "runc" too.
    runc_runs = runs(runc_txt, runc)
    report("runc run, started by bash (ms):", runc_runs, RUNC)
    strata_runs = runs(strata_txt, strata)
    report("strata run --rm (ms):", strata_runs, STRATA)
    alone = [r["runc_exit"] - r["runc"] for r in runc_runs if "runc_exit" in r]
    whole = [r["exit"] - r["start"] for r in strata_runs if "exit" in r]
    if alone and whole:
        extra = statistics.median(whole) - statistics.median(alone)
        ratio = statistics.median(whole) / statistics.median(alone)
        print(f"strata in all - runc in all (medians): {extra:.2f} ms ({ratio:.2f}x)")


if __name__ == "__main__":
    main()
