"""Sparkplug B payloads made by an independent implementation (the PyPI
package mqtt-spb-wrapper, with Eclipse Tahu's Python payload helpers), with
what each metric holds, as JSON on stdout, for
collector/tests/io/sparkplug.rs."""
import json

from mqtt_spb_wrapper.spb_protobuf import sparkplug_b as sp
from mqtt_spb_wrapper.spb_protobuf.sparkplug_b_pb2 import Payload

T = 1772427600000  # 2026-03-02T05:00:00Z
D = sp.MetricDataType

CASES = [
    ("int8", D.Int8, -5, -5),
    ("int16", D.Int16, -300, -300),
    ("int32", D.Int32, -70000, -70000),
    ("int64", D.Int64, -5000000000, -5000000000),
    ("uint8", D.UInt8, 200, 200),
    ("uint16", D.UInt16, 60000, 60000),
    ("uint32", D.UInt32, 4000000000, 4000000000),
    ("uint64", D.UInt64, 2**63 + 5, 2**63 + 5),
    ("float", D.Float, 1.5, 1.5),
    ("double", D.Double, 2.25, 2.25),
    ("bool", D.Boolean, True, True),
    ("string", D.String, "running", "running"),
    ("text", D.Text, "Vial 2 ml", "Vial 2 ml"),
    ("datetime", D.DateTime, T, T),
    ("bytes", D.Bytes, b"\x01\x02\xff", "0102ff"),
]


def main():
    birth, data, expect = Payload(), Payload(), []
    birth.timestamp, birth.seq = T, 0
    data.timestamp, data.seq = T + 1000, 1
    for alias, (name, dtype, value, want) in enumerate(CASES, start=1):
        sp.addMetric(birth, name, alias, dtype, value, T + alias)
        sp.addMetric(data, None, alias, dtype, value, T + 1000 + alias)
        expect.append({"name": name, "alias": alias, "datatype": dtype, "value": want})
    null = sp.addMetric(birth, "nothing", 90, D.Double, 0.0, T)
    null.ClearField("double_value")
    null.is_null = True
    hist = sp.addMetric(data, None, 91, D.Double, 7.5, T - 60000)
    hist.is_historical = True
    print(json.dumps({
        "nbirth": birth.SerializeToString().hex(),
        "ndata": data.SerializeToString().hex(),
        "metrics": expect,
        "t": T,
    }))


main()
