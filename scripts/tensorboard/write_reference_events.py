#!/usr/bin/env python3
"""Writes the reference event file the Swift reader is tested against, with TensorBoard's
own writer (tensorboard.summary.writer.event_file_writer.EventFileWriter, from the
`tensorboard` package on PyPI; no TensorFlow needed), and the values it wrote as JSON.

    python3 scripts/tensorboard/write_reference_events.py Tests/DecoupledTensorBoardTests/Fixtures/tensorboard-writer

The directory is emptied of earlier event files first. Output: one events.out.tfevents.* file
and expected.json ({"file_version", "events": [{"step", "wall_time", "scalars": {tag: value},
"other_tags": [...]}]}). Values are stored as the float32 the file holds, printed with
repr(), so the JSON round-trips them exactly.
"""
import glob
import json
import os
import struct
import sys

from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, types_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "Tests/DecoupledTensorBoardTests/Fixtures/tensorboard-writer"
    os.makedirs(out, exist_ok=True)
    for old in glob.glob(os.path.join(out, "events.out.tfevents.*")):
        os.remove(old)
    writer = EventFileWriter(out, filename_suffix="")
    expected = []
    wall = 1764633600.25  # fixed, so the fixture's content does not depend on the clock
    for i, step in enumerate([0, 10, 20, 1000, 2**40]):
        scalars = {
            "loss/train": 2.302585 / (1 + i),
            "accuracy/test": 0.1 * i,
            "optimizer/lr": 1e-3 * 0.5 ** i,
            "weights/norm": -3.5e-39 if i == 3 else 12.75 + i,  # a subnormal float32 at step 1000
        }
        values = [summary_pb2.Summary.Value(tag=t, simple_value=v) for t, v in scalars.items()]
        other = []
        if i == 2:
            # A scalar in TensorBoard's newer tensor form (plugin "scalars"): not a simple_value.
            metadata = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
            tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[1.5])
            values.append(summary_pb2.Summary.Value(tag="tensor_scalar", metadata=metadata, tensor=tensor))
            other.append("tensor_scalar")
        event = event_pb2.Event(wall_time=wall + i, step=step, summary=summary_pb2.Summary(value=values))
        writer.add_event(event)
        expected.append({"step": step, "wall_time": wall + i,
                         "scalars": {t: repr(f32(v)) for t, v in scalars.items()}, "other_tags": other})
    writer.close()
    files = glob.glob(os.path.join(out, "events.out.tfevents.*"))
    assert len(files) == 1, files
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump({"file": os.path.basename(files[0]), "file_version": "brain.Event:2", "events": expected}, f, indent=1)
        f.write("\n")
    print(f"wrote {files[0]} ({os.path.getsize(files[0])} bytes) and expected.json")


if __name__ == "__main__":
    main()
