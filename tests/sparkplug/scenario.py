"""A Sparkplug B plant, its payloads made by an independent implementation
(the PyPI package pysparkplug), as recording records on stdout (one JSON
object per line: t_ms, topic, payload as hex), for tests/sparkplug.rs.

Edge node lyon/line-1 with device filler, report by exception, the node's
clock equal to the receive time:
  0 s     NBIRTH (bdSeq 0), DBIRTH: state running, counts 0
  10-110  DDATA every 10 s by alias: +100 total, +99 good
  125     NDEATH (bdSeq 0): the node is gone
  245     NBIRTH (bdSeq 1), DBIRTH: state running, counts 1100/1089
  255-295 DDATA every 10 s
  300     DDATA state stopped (fault), then nothing at all until
  480     DDATA state running
  490-600 DDATA every 10 s

With the argument `gap`: a birth, then seq 2 missing: 9 messages held
(one more than the reorder window), then 7 more from a node the host now
takes as unborn.
"""
import sys
import json

import pysparkplug as p

T = 1772427600000  # 2026-03-02T05:00:00Z
S = 1000
G, N, D = "lyon", "line-1", "filler"


def out(t, kind, payload, device=None):
    topic = f"spBv1.0/{G}/{kind}/{N}" + (f"/{device}" if device else "")
    print(json.dumps({"t_ms": t, "topic": topic, "hex": payload.encode(include_dtypes=kind.endswith("BIRTH")).hex()}))


def bd(v):
    return p.Metric(timestamp=None, name="bdSeq", datatype=p.DataType.INT64, value=v)


def m(t, alias, value, name=None, dtype=None):
    return p.Metric(timestamp=t, name=name, datatype=dtype, value=value, alias=alias)


class Node:
    def __init__(self):
        self.seq = 0

    def next(self):
        s = self.seq
        self.seq = (self.seq + 1) % 256
        return s

    def birth(self, t, bd_seq, state, total, good):
        self.seq = 0
        out(t, "NBIRTH", p.NBirth(timestamp=t, seq=self.next(), metrics=(bd(bd_seq),)))
        metrics = (
            m(t, 1, state, "state", p.DataType.STRING),
            m(t, 2, total, "count_total", p.DataType.UINT64),
            m(t, 3, good, "count_good", p.DataType.UINT64),
        )
        out(t, "DBIRTH", p.DBirth(timestamp=t, seq=self.next(), metrics=metrics), D)

    def data(self, t, metrics):
        ms = tuple(m(t, a, v, dtype=dt) for a, v, dt in metrics)
        out(t, "DDATA", p.DData(timestamp=t, seq=self.next(), metrics=ms), D)


def main():
    n = Node()
    U = p.DataType.UINT64
    total, good = 0, 0
    n.birth(T, 0, "running", total, good)
    for s in range(10, 111, 10):
        total, good = total + 100, good + 99
        n.data(T + s * S, [(2, total, U), (3, good, U)])
    out(T + 125 * S, "NDEATH", p.NDeath(timestamp=T, bd_seq_metric=bd(0)))
    n.birth(T + 245 * S, 1, "running", total, good)
    for s in range(255, 296, 10):
        total, good = total + 100, good + 99
        n.data(T + s * S, [(2, total, U), (3, good, U)])
    n.data(T + 300 * S, [(1, "fault", p.DataType.STRING)])
    n.data(T + 480 * S, [(1, "running", p.DataType.STRING)])
    for s in range(490, 601, 10):
        total, good = total + 100, good + 99
        n.data(T + s * S, [(2, total, U), (3, good, U)])


def gap():
    n = Node()
    U = p.DataType.UINT64
    n.birth(T, 0, "running", 0, 0)
    n.next()  # seq 2 never sent
    for i in range(16):
        n.data(T + (i + 1) * S, [(2, 100 * (i + 1), U)])


if sys.argv[1:] == ["gap"]:
    gap()
else:
    main()
