#!/usr/bin/env python3
"""Reads a run's TensorBoard event files with the `tensorboard` package from PyPI (its
EventAccumulator, what TensorBoard itself loads a run with) and compares them with the run's
metrics.jsonl: the same steps, and at each step the same values (as the float32 TensorBoard
stores), each step once per tag. Independent of Decoupled's tag names: values are compared
as the multiset of a record's numbers (every key but `step`, and each entry of `penalties`
and `metrics`).

    pip install tensorboard
    python3 scripts/tensorboard/check_events.py RUN_DIR [RUN_DIR ...]

Exit status 0 when every run matches, 1 otherwise (each difference is printed).
"""
import json
import math
import os
import struct
import sys

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def leaf_values(record):
    """The record's numbers but step, as float32, non-finite strings included."""
    out = []
    for key, value in record.items():
        if key == "step":
            continue
        for v in (value.values() if isinstance(value, dict) else [value]):
            if isinstance(v, str):
                v = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(v)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                out.append(f32(float(v)))
    return out


def key(values):
    return sorted(("nan" if math.isnan(v) else "", 0.0 if math.isnan(v) else v) for v in values)


def check(run_dir):
    problems = []
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f if line.strip()]
    tb_dir = os.path.join(run_dir, "tensorboard")
    files = sorted(n for n in os.listdir(tb_dir) if "tfevents" in n)
    acc = EventAccumulator(tb_dir, size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags()["scalars"]
    by_step = {}
    for tag in tags:
        seen = set()
        for e in acc.Scalars(tag):
            if e.step in seen:
                problems.append(f"tag {tag}: step {e.step} appears twice")
            seen.add(e.step)
            by_step.setdefault(e.step, []).append(e.value)
    steps = [r["step"] for r in records]
    if sorted(by_step) != sorted(steps):
        problems.append(f"steps differ: metrics.jsonl {steps}, event files {sorted(by_step)}")
    for r in records:
        want, got = key(leaf_values(r)), key(by_step.get(r["step"], []))
        if want != got:
            problems.append(f"step {r['step']}: metrics.jsonl values {want} != event file values {got}")
    print(f"{run_dir}: {len(files)} event file(s), {len(tags)} tags, {len(by_step)} steps, "
          f"{sum(len(v) for v in by_step.values())} scalars; metrics.jsonl: {len(records)} records -> "
          + ("match" if not problems else f"{len(problems)} difference(s)"))
    print("  tags: " + " ".join(sorted(tags)))
    for p in problems:
        print("  " + p)
    return not problems


def main():
    if len(sys.argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    ok = all([check(d) for d in sys.argv[1:]])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
