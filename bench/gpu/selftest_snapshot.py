#!/usr/bin/env python3
"""Self-test of the allocator-snapshot summary (probes.py, measure.py) on CPU, with a fake torch.cuda.memory.

The snapshot rows only write on CUDA, so the dry run never reaches this code; this test feeds it a snapshot shaped as
torch.cuda.memory._snapshot() returns one (torch 2.x keys) and checks the JSON written to OUT/snapshots/.
Prints "selftest_snapshot: ok" and exits 0, or raises.

  /usr/bin/python3 bench/gpu/selftest_snapshot.py
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from types import SimpleNamespace

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import measure  # noqa: E402
import probes  # noqa: E402

MIB = 1 << 20
BASE = 0x7F0000000000


def fake_snapshot(events: list[dict]) -> dict:
    return {
        "segments": [
            {   # listed second by address: the summary sorts segments by address
                "address": BASE + 64 * MIB, "total_size": 2 * MIB, "allocated_size": 1024, "segment_type": "small",
                "stream": 0, "is_expandable": False,
                "blocks": [{"address": BASE + 64 * MIB, "size": 512, "state": "active_allocated"},
                           {"address": BASE + 64 * MIB + 512, "size": 512, "state": "active_allocated"},
                           {"address": BASE + 64 * MIB + 1024, "size": 2 * MIB - 1024, "state": "inactive"}],
            },
            {
                "address": BASE, "total_size": 40 * MIB, "allocated_size": 24 * MIB, "segment_type": "large",
                "stream": 0, "is_expandable": False,
                "blocks": [{"address": BASE, "size": 16 * MIB, "state": "active_allocated"},
                           {"address": BASE + 16 * MIB, "size": 10 * MIB, "state": "inactive"},
                           {"address": BASE + 26 * MIB, "size": 8 * MIB, "state": "active_allocated"},
                           {"address": BASE + 34 * MIB, "size": 6 * MIB, "state": "inactive"}],
            },
        ],
        "device_traces": [events],
    }


EVENTS = [
    {"action": "segment_alloc", "addr": BASE, "size": 40 * MIB, "stream": 0},
    {"action": "alloc", "addr": BASE, "size": 16 * MIB, "stream": 0},
    {"action": "alloc", "addr": BASE + 64 * MIB, "size": 512, "stream": 0},          # small: counted, not listed
    {"action": "alloc", "addr": BASE + 26 * MIB, "size": 8 * MIB, "stream": 0},
    {"action": "free_requested", "addr": BASE + 90 * MIB, "size": 4 * MIB, "stream": 0},  # in no segment
]


class FakeCuda(probes.CudaProbe):
    """CudaProbe without a GPU: fixed peaks, no synchronize."""

    def sync(self) -> None:
        pass

    def reset(self) -> None:
        pass

    def peak(self) -> tuple[int, int]:
        return 30 * MIB, 42 * MIB


def check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)


def main() -> int:
    memory = torch.cuda.memory
    saved = {name: getattr(memory, name, None) for name in ("_snapshot", "_record_memory_history")}
    calls: list[dict] = []
    recording = {"on": False}

    def record(enabled="all", context="all", stacks="all", max_entries=sys.maxsize, clear_history=False):
        calls.append({"enabled": enabled, "context": context, "max_entries": max_entries, "clear": clear_history})
        recording["on"] = enabled is not None

    def snapshot():
        return fake_snapshot(EVENTS if recording["on"] else [])

    try:
        memory._snapshot = snapshot
        memory._record_memory_history = record

        # 1. The pure summaries.
        seg = probes.summarise_segments(fake_snapshot([]))
        check(seg["segments_count"] == 2 and seg["reserved"] == 42 * MIB, f"totals {seg}")
        large = seg["segments"][0]
        check(large["address"] == BASE and large["pool"] == "large", "segments sorted by address")
        check(large["blocks"] == 4 and large["free_blocks"] == 2 and large["largest_free"] == 10 * MIB, f"{large}")
        check(large["block_list"] == [[16 * MIB, "a"], [10 * MIB, "f"], [8 * MIB, "a"], [6 * MIB, "f"]], "blocks")
        check("block_list" not in seg["segments"][1], "small-pool blocks are counted, not listed")
        check(seg["largest_free"] == 10 * MIB, "largest free over all segments")
        trace = probes.summarise_trace(fake_snapshot(EVENTS), seg["segments"])
        check(trace["total"] == 5 and trace["small_not_listed"] == 1, f"{trace}")
        check(trace["listed"] == [["segment_alloc", 40 * MIB, 0, 0], ["alloc", 16 * MIB, 0, 0],
                                  ["alloc", 8 * MIB, 0, 26 * MIB], ["free_requested", 4 * MIB, -1, -1]],
              f"{trace['listed']}")

        # 2. The probe: a traced extra iteration between two _record_memory_history calls.
        steps = []
        data = FakeCuda().allocator_snapshot(lambda: steps.append(1))
        check(steps == [1], "one traced iteration")
        check([c["enabled"] for c in calls] == ["all", None] and calls[0]["context"] is None, f"{calls}")
        check(calls[0]["clear"] is True, "an earlier row's events are cleared")
        traced = data["traced_iteration"]
        check(traced["peak_reserved_bytes"] == 42 * MIB and len(traced["events"]["listed"]) == 4, f"{traced}")
        check(data["after_measured_iteration"]["segments_count"] == 2, "state after the measured iteration")

        # 3. A failing traced iteration is recorded, not raised, and recording is switched off.
        calls.clear()

        def oom():
            raise RuntimeError("CUDA out of memory (fake)")
        data = FakeCuda().allocator_snapshot(oom)
        check("out of memory" in data["traced_iteration"]["error"], f"{data}")
        check(calls[-1]["enabled"] is None, "recording off after a failure")

        # 4. A torch whose _record_memory_history lacks clear_history still traces.
        calls.clear()

        def record_without_clear(enabled="all", context="all", stacks="all", max_entries=sys.maxsize):
            record(enabled, context, stacks, max_entries)
        memory._record_memory_history = record_without_clear
        data = FakeCuda().allocator_snapshot(lambda: None)
        check(len(data["traced_iteration"]["events"]["listed"]) == 4 and len(calls) == 2, f"{calls}")

        # 5. torch 2.0's _record_memory_history(enabled, record_context, ...) has no `context`: no trace, no error.
        memory._record_memory_history = lambda enabled, record_context=True, trace_alloc_max_entries=1: None
        data = FakeCuda().allocator_snapshot(lambda: None)
        check("another signature" in data["traced_iteration"]["skipped"], f"{data}")

        # 6. No _snapshot at all (old torch) and the CPU probe: nothing.
        del memory._snapshot
        check(FakeCuda().allocator_snapshot(lambda: None) is None, "no _snapshot: None")
        check(probes.CpuProbe().allocator_snapshot(lambda: None) is None, "CPU: None")
        memory._snapshot = snapshot
        memory._record_memory_history = record

        # 7. measure.py's saver writes OUT/snapshots/<row id with / as _>.json and returns its relative path.
        with tempfile.TemporaryDirectory() as out:
            args = SimpleNamespace(out=out, inject_oom="", dry_run=False)
            runner = measure.Runner(args, {"gpu_name": "fake"}, FakeCuda(), "cuda", "transformers", "peft",
                                    None, os.path.join(out, "x.csv"))
            row_id = "llama3.2-1b/prefill/bf16/b1-s8192/eager"
            rel = runner.snapshot_saver(row_id)(lambda: None, {"peak_reserved_bytes": 1, "peak_allocated_bytes": 2})
            check(rel == "snapshots/llama3.2-1b_prefill_bf16_b1-s8192_eager.json", rel)
            with open(os.path.join(out, rel)) as f:
                doc = json.load(f)
            check(doc["row_id"] == row_id and doc["measured"]["peak_reserved_bytes"] == 1, f"{doc.keys()}")
            check(doc["traced_iteration"]["segments"]["segments_count"] == 2, "traced segments in the file")
            # A saver that fails leaves the row alone: empty file name.
            runner.probe = SimpleNamespace(allocator_snapshot=lambda step: 1 / 0)
            check(runner.snapshot_saver(row_id)(lambda: None, {}) == "", "failure returns ''")
    finally:
        for name, value in saved.items():
            if value is None:
                if hasattr(memory, name):
                    delattr(memory, name)
            else:
                setattr(memory, name, value)
    print("selftest_snapshot: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
