#!/usr/bin/env python3
"""Replay one FSDP1 QLoRA/LoRA training step of a Llama decoder through a model of PyTorch's CUDA caching allocator.

Why: the published FSDP1 runs report *reserved* memory (or nvidia-smi), which exceeds the tensors alive at the peak by
whatever the caching allocator keeps in partly used segments. This script asks how much of that a checkpointed step
explains by itself, allocation by allocation, with no device: the allocator rules below are those of
c10/cuda/CUDACachingAllocator.cpp with default settings (no expandable segments, no max_split_size), and the op list
follows the eager HF Llama forward (RMSNorm fp32 upcast, bitsandbytes dequantize-per-matmul, PEFT LoRA with a private
dropout copy per adapted linear, rotary, repeat_kv, SDPA/flash, SwiGLU) under reentrant activation checkpointing, with
FSDP1 unit gathers on their own streams.

It is an analysis tool for issue 6, not part of the planner: it prints peak allocated and peak reserved for the
published rows it knows (see ROWS) and the slack between them. Pure Python, no torch needed:

    python3 bench/gpu/allocator_replay.py            # the table
    python3 bench/gpu/allocator_replay.py --self-test

Simplifications (each named so a reader can judge): one CUDA stream for compute, one for all-gathers, one for the
offload's host-to-device shard copies; events/record_stream delays are ignored (a freed block is reusable at once on
its stream); tensors under 1 MiB that live for one op are mostly left out; LoRA gradients, their reduce-scatter and the
optimizer step are left out (LoRA shards are small and, with offload, on the CPU).
"""
from __future__ import annotations

import argparse
import bisect
from dataclasses import dataclass

MiB = 1 << 20
GiB = 1 << 30

# --- the caching allocator -------------------------------------------------------------------------------------------
K_MIN_BLOCK = 512            # every request rounds up to a multiple of 512 B
K_SMALL_SIZE = 1 * MiB       # requests up to 1 MiB use the small pool
K_SMALL_BUFFER = 2 * MiB     # ... served from 2 MiB segments
K_MIN_LARGE_ALLOC = 10 * MiB # large requests under 10 MiB get a 20 MiB segment
K_LARGE_BUFFER = 20 * MiB
K_ROUND_LARGE = 2 * MiB      # larger requests: segment rounded up to 2 MiB


class Block:
    __slots__ = ("segment", "offset", "size", "free", "pool", "prev", "next")

    def __init__(self, segment, offset, size, pool):
        self.segment, self.offset, self.size, self.pool = segment, offset, size, pool
        self.free, self.prev, self.next = True, None, None

    def key(self):
        return (self.size, self.segment, self.offset)


class CachingAllocator:
    """Best-fit over free blocks of the same pool (small/large) and stream; split when the rest is worth keeping; merge
    neighbours on free; never return segments to the driver (no empty_cache during a step)."""

    def __init__(self):
        self.pools: dict[tuple[str, int], list] = {}
        self.reserved = self.allocated = self.peak_reserved = self.peak_allocated = 0
        self.segments = 0
        self.live: dict[int, Block] = {}
        self._next_id = 0

    @staticmethod
    def round_size(n: int) -> int:
        return K_MIN_BLOCK if n < K_MIN_BLOCK else -(-n // K_MIN_BLOCK) * K_MIN_BLOCK

    @staticmethod
    def segment_size(n: int) -> int:
        if n <= K_SMALL_SIZE:
            return K_SMALL_BUFFER
        if n < K_MIN_LARGE_ALLOC:
            return K_LARGE_BUFFER
        return -(-n // K_ROUND_LARGE) * K_ROUND_LARGE

    def _insert(self, b: Block):
        bisect.insort(self.pools.setdefault(b.pool, []), (b.key(), b))

    def _remove(self, b: Block):
        lst = self.pools[b.pool]
        i = bisect.bisect_left(lst, (b.key(),))
        assert lst[i][1] is b
        lst.pop(i)

    def malloc(self, nbytes: float, stream: int = 0) -> int:
        size = self.round_size(int(nbytes))
        pool = ("small" if size <= K_SMALL_SIZE else "large", stream)
        free = self.pools.setdefault(pool, [])
        i = bisect.bisect_left(free, ((size, -1, -1),))
        if i < len(free):
            block = free.pop(i)[1]
        else:
            block = Block(self.segments, 0, self.segment_size(size), pool)
            self.segments += 1
            self.reserved += block.size
            self.peak_reserved = max(self.peak_reserved, self.reserved)
        rest = block.size - size
        if (pool[0] == "small" and rest >= K_MIN_BLOCK) or (pool[0] == "large" and rest > K_SMALL_SIZE):
            tail = Block(block.segment, block.offset + size, rest, pool)
            tail.prev, tail.next = block, block.next
            if block.next:
                block.next.prev = tail
            block.next, block.size = tail, size
            self._insert(tail)
        block.free = False
        self.allocated += block.size
        self.peak_allocated = max(self.peak_allocated, self.allocated)
        self._next_id += 1
        self.live[self._next_id] = block
        return self._next_id

    def free(self, *handles: int):
        for h in handles:
            b = self.live.pop(h)
            b.free = True
            self.allocated -= b.size
            if b.prev and b.prev.free:
                b = self._absorb(b.prev, b, pooled=b.prev)
            if b.next and b.next.free:
                b = self._absorb(b, b.next, pooled=b.next)
            self._insert(b)

    def _absorb(self, left: Block, right: Block, pooled: Block) -> Block:
        """Merges two neighbouring free blocks into `left`; `pooled`, the one that sat in the free pool, leaves it."""
        self._remove(pooled)
        left.size += right.size
        left.next = right.next
        if right.next:
            right.next.prev = left
        return left


# --- the step --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    name: str
    hidden: int
    intermediate: int
    kv_width: int
    layers: int
    vocab: int
    batch: int
    seq: int
    lora_rank: int
    lora_o_proj: bool     # Answer.AI's default targets skip o_proj; PEFT all-linear includes it
    quantized: bool       # QLoRA (bitsandbytes nf4-dq, bf16 quant storage) or a bf16 base
    offload: bool         # FSDP1 CPUOffload(offload_params=True)
    ranks: int
    keep_output: bool     # the loop holds the fp32 logits through backward
    repeat_kv: bool       # transformers' SDPA path copies K/V to all heads; flash-attention-2 does not
    measured_gib: float
    metric: str


ROWS = [
    Row("aai-l2-70b-qlora-offload-b2-s2048", 8192, 28672, 1024, 80, 32000, 2, 2048, 64, False, True, True, 2, True, True, 14.92, "reserved"),
    Row("peft-l2-70b-qlora-fsdp-offload-2x24gb", 8192, 28672, 1024, 80, 32000, 2, 2048, 8, True, True, True, 2, False, False, 18.25, "nvidia-smi"),
    Row("peft-l2-70b-qlora-fsdp-2gpu", 8192, 28672, 1024, 80, 32000, 2, 2048, 8, True, True, False, 2, False, False, 33.16, "nvidia-smi"),
    Row("aai-l2-7b-qlora-b4-s2048", 4096, 11008, 4096, 32, 32000, 4, 2048, 64, False, True, False, 2, True, True, 11.22, "reserved"),
    Row("aai-l2-7b-lora-b4-s2048", 4096, 11008, 4096, 32, 32000, 4, 2048, 64, False, False, False, 2, True, True, 16.14, "reserved"),
    Row("aai-l2-7b-qlora-b1-s2048", 4096, 11008, 4096, 32, 32000, 1, 2048, 64, False, True, False, 2, True, True, 5.21, "reserved"),
    Row("aai-l2-7b-lora-b1-s2048", 4096, 11008, 4096, 32, 32000, 1, 2048, 64, False, False, False, 2, True, True, 10.22, "reserved"),
]

COMPUTE, GATHER, STAGE = 0, 1, 2  # streams


def replay(row: Row) -> CachingAllocator:
    A = CachingAllocator()
    h, f, kv, L, V = row.hidden, row.intermediate, row.kv_width, row.layers, row.vocab
    T, r, heads = row.batch * row.seq, row.lora_rank, row.hidden // 128
    targets = {"q": (h, h), "k": (h, kv), "v": (h, kv), "o": (h, h), "gate": (h, f), "up": (h, f), "down": (f, h)}
    adapted = {n for n in targets if n != "o" or row.lora_o_proj}
    layer_bytes = sum(i * o for i, o in targets.values()) * (0.5 if row.quantized else 2)
    lora_params = L * sum(r * (i + o) for n, (i, o) in targets.items() if n in adapted)
    grad = [False]  # inside the recomputation during backward (tensors saved for backward stay)

    def norm():
        f32, sq = A.malloc(4 * T * h), A.malloc(4 * T * h)
        var = A.malloc(4 * T)
        A.free(sq)
        eps, rs = A.malloc(4 * T), A.malloc(4 * T)
        A.free(eps)
        normed, bf = A.malloc(4 * T * h), A.malloc(2 * T * h)
        A.free(normed)
        y = A.malloc(2 * T * h)
        A.free(bf)
        if grad[0]:
            return y, [f32, var, rs]
        A.free(f32, var, rs)
        return y, []

    def base_matmul(i, o, width):
        """The frozen base's matmul; bitsandbytes dequantizes the weight per call (nested absmax to fp32 first)."""
        if row.quantized:
            absmax = A.malloc(i * o // 64 * 4)
            dq = A.malloc(2 * i * o)
            A.free(absmax)
        out = A.malloc(2 * T * width)
        if row.quantized:
            A.free(dq)
        return out

    def linear(name):
        i, o = targets[name]
        out = base_matmul(i, o, o)
        if name not in adapted:
            return out, []
        drop, mask = A.malloc(2 * T * i), A.malloc(T * i)
        a = A.malloc(2 * T * r)
        b = A.malloc(2 * T * o)
        scaled = A.malloc(2 * T * o)
        A.free(b)
        res = A.malloc(2 * T * o)
        A.free(out, scaled)
        if grad[0]:
            return res, [drop, mask, a]
        A.free(drop, mask, a)
        return res, []

    def rotary(x, width):
        c1, neg = A.malloc(2 * T * width), A.malloc(T * width)
        cat = A.malloc(2 * T * width)
        A.free(neg)
        c2 = A.malloc(2 * T * width)
        A.free(cat)
        out = A.malloc(2 * T * width)
        A.free(c1, c2, x)
        return out

    def layer():
        kept = []
        y, k_ = norm(); kept += k_
        q, k_ = linear("q"); kept += k_
        k, k_ = linear("k"); kept += k_
        v, k_ = linear("v"); kept += k_
        cos, sin = A.malloc(2 * T * 128), A.malloc(2 * T * 128)
        q, k = rotary(q, h), rotary(k, kv)
        A.free(cos, sin)
        if row.repeat_kv:
            kr = A.malloc(2 * T * h); A.free(k)
            vr = A.malloc(2 * T * h); A.free(v)
            k, v = kr, vr
        o, lse = A.malloc(2 * T * h), A.malloc(4 * T * heads)
        if grad[0]:
            kept += [q, k, v, o, lse]
        else:
            A.free(q, k, v, lse)
        attn = A.malloc(2 * T * h)
        if not grad[0]:
            A.free(o)
        op, k_ = linear("o"); kept += k_
        kept.append(attn) if grad[0] else A.free(attn)
        kept.append(y) if grad[0] else A.free(y)
        h1 = A.malloc(2 * T * h)
        A.free(op)
        y2, k_ = norm(); kept += k_
        g, k_ = linear("gate"); kept += k_
        act = A.malloc(2 * T * f)
        kept.append(g) if grad[0] else A.free(g)
        u, k_ = linear("up"); kept += k_
        prod = A.malloc(2 * T * f)
        if grad[0]:
            kept += [act, u]
        else:
            A.free(act, u)
        d, k_ = linear("down"); kept += k_
        kept += [prod, y2] if grad[0] else []
        if not grad[0]:
            A.free(prod, y2)
        out = A.malloc(2 * T * h)
        A.free(d, h1)
        return out, kept

    def linear_backward(name):
        i, o = targets[name]
        lora_grad = None
        if name in adapted:
            gb, ga = A.malloc(2 * T * o), A.malloc(2 * T * r)
            A.free(gb)
            gd = A.malloc(2 * T * i)
            A.free(ga)
            lora_grad = A.malloc(2 * T * i)
            A.free(gd)
        gx = base_matmul(i, o, i)
        if lora_grad:
            A.free(lora_grad)  # accumulated into gx
        return gx

    def norm_backward():
        ghb, g32 = A.malloc(2 * T * h), A.malloc(4 * T * h)
        A.free(ghb)
        a1, t = A.malloc(4 * T * h), A.malloc(4 * T * h)
        A.free(t)
        m, p = A.malloc(4 * T * h), A.malloc(4 * T * h)
        A.free(m, g32, p)
        gx = A.malloc(2 * T * h)
        A.free(a1)
        return gx

    def layer_backward(kept):
        gprod = linear_backward("down")
        gact, gu = A.malloc(2 * T * f), A.malloc(2 * T * f)
        A.free(gprod)
        gy2 = linear_backward("up")
        A.free(gu)
        gg = A.malloc(2 * T * f)
        A.free(gact)
        A.free(linear_backward("gate"), gg)
        gn = norm_backward()
        A.free(gy2)
        gh1 = A.malloc(2 * T * h)
        A.free(gn)
        gattn = linear_backward("o")
        go = A.malloc(2 * T * h)
        A.free(gattn)
        gq, gk, gv = (A.malloc(2 * T * h), A.malloc(2 * T * (h if row.repeat_kv else kv)), A.malloc(2 * T * (h if row.repeat_kv else kv)))
        A.free(A.malloc(4 * T * heads), go)
        if row.repeat_kv:
            gk2 = A.malloc(2 * T * kv); A.free(gk)
            gv2 = A.malloc(2 * T * kv); A.free(gv)
            gk, gv = gk2, gv2
        for width, which in ((h, "q"), (kv, "k")):
            a1, a2, a3 = A.malloc(2 * T * width), A.malloc(2 * T * width), A.malloc(2 * T * width)
            A.free(a2, gq if which == "q" else gk, a3)
            if which == "q":
                gq = a1
            else:
                gk = a1
        gy = linear_backward("q")
        A.free(gq)
        A.free(linear_backward("k"), gk)
        A.free(linear_backward("v"), gv)
        gn1 = norm_backward()
        A.free(gy)
        gx = A.malloc(2 * T * h)
        A.free(gn1, gh1, *kept)
        return gx

    # Persistent state: bitsandbytes QuantState (whole on every rank), the sharded base when not offloaded, LoRA
    # shards with AdamW states (bf16 for Answer.AI's pure bf16) when not offloaded, the gathered root unit.
    if row.quantized:
        for _ in range(L):
            for i, o in targets.values():
                A.malloc(i * o // 64 + i * o // 64 // 256 * 4)
    if not row.offload:
        for _ in range(L):
            A.malloc(layer_bytes / row.ranks)
        A.malloc(2 * V * h * 2 / row.ranks)
        A.malloc(lora_params * 2 * 3 / row.ranks)
    A.malloc(2 * V * h * 2, GATHER)  # root unit (embeddings + head): not resharded after forward

    def gather():
        staged = A.malloc(layer_bytes / row.ranks, STAGE) if row.offload else None
        full = A.malloc(layer_bytes, GATHER)
        return [x for x in (full, staged) if x is not None]

    x = A.malloc(2 * T * h)  # embedding output = first checkpoint
    checkpoints = []
    for _ in range(L):
        unit = gather()
        checkpoints.append(x)
        x, _ = layer()
        A.free(*unit)

    # Head and loss, transformers < 4.46: fp32 logits in the output, shifted contiguous copy, fp32 log_softmax.
    grad[0] = True
    y, kept_norm = norm()
    logits16, logits32 = A.malloc(2 * T * V), A.malloc(4 * T * V)
    A.free(logits16)
    shifted = A.malloc(4 * T * V)
    logsm = A.malloc(4 * T * V)
    A.free(shifted)
    if not row.keep_output:
        A.free(logits32)
    g_logsm, g_in = A.malloc(4 * T * V), A.malloc(4 * T * V)
    A.free(g_logsm, logsm)
    g_full = A.malloc(4 * T * V)
    A.free(g_in)
    g16 = A.malloc(2 * T * V)
    A.free(g_full)
    gy = A.malloc(2 * T * h)
    A.free(g16)
    G = norm_backward()
    A.free(gy, y, x, *kept_norm)
    for i in reversed(range(L)):
        unit = gather()
        out, kept = layer()
        gx = layer_backward(kept)
        A.free(out, G, checkpoints[i], *unit)
        G = gx
    if row.keep_output:
        A.free(logits32)
    return A


def self_test():
    A = CachingAllocator()
    assert A.round_size(1) == 512 and A.round_size(513) == 1024
    assert A.segment_size(100) == 2 * MiB and A.segment_size(5 * MiB) == 20 * MiB and A.segment_size(11 * MiB + 1) == 12 * MiB
    a = A.malloc(5 * MiB)                 # one 20 MiB segment, 15 MiB left free in it
    assert A.reserved == 20 * MiB
    b = A.malloc(15 * MiB)                # fits the tail of the same segment exactly
    assert A.reserved == 20 * MiB
    A.free(a, b)                          # merged back into one free 20 MiB block
    c = A.malloc(16 * MiB)
    assert A.reserved == 20 * MiB
    d = A.malloc(16 * MiB)                # 4 MiB left is too small: a new segment
    assert A.reserved == 36 * MiB
    A.free(c, d)
    e = A.malloc(1 * MiB, stream=1)       # other stream, other pool
    assert A.reserved == 38 * MiB and A.allocated == 1 * MiB
    A.free(e)
    print("self-test ok")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        self_test()
        return
    print(f"{'row':42s} {'alloc GiB':>9s} {'reserved':>9s} {'slack':>6s} {'measured':>9s}  metric")
    for row in ROWS:
        A = replay(row)
        print(f"{row.name:42s} {A.peak_allocated / GiB:9.2f} {A.peak_reserved / GiB:9.2f} {(A.peak_reserved - A.peak_allocated) / GiB:6.2f} "
              f"{row.measured_gib:9.2f}  {row.metric}{' (add CUDA context + NCCL)' if row.metric == 'nvidia-smi' else ''}")


if __name__ == "__main__":
    main()
