"""Sparkplug B payloads made by an independent implementation (the PyPI
package pysparkplug), with what each metric holds, as JSON on stdout, for
collector/tests/io/sparkplug.rs."""
import datetime
import json

import pysparkplug as p

T = 1772427600000  # 2026-03-02T05:00:00Z

CASES = [
    ("int8", "INT8", -5),
    ("int16", "INT16", -300),
    ("int32", "INT32", -70000),
    ("int64", "INT64", -5000000000),
    ("uint8", "UINT8", 200),
    ("uint16", "UINT16", 60000),
    ("uint32", "UINT32", 4000000000),
    ("uint64", "UINT64", 2**63 + 5),
    ("float", "FLOAT", 1.5),
    ("double", "DOUBLE", 2.25),
    ("bool", "BOOLEAN", True),
    ("string", "STRING", "running"),
    ("text", "TEXT", "Vial 2 ml"),
    ("datetime", "DATETIME", datetime.datetime.fromtimestamp(T / 1000, tz=datetime.timezone.utc)),
    ("bytes", "BYTES", b"\x01\x02\xff"),
    ("int8_array", "INT8_ARRAY", (1, -2, 3)),
]


def expected(value):
    if isinstance(value, datetime.datetime):
        return T
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple):
        return None
    return value


def main():
    birth, data, expect = [], [], []
    for alias, (name, dtype, value) in enumerate(CASES, start=1):
        dt = getattr(p.DataType, dtype)
        birth.append(p.Metric(timestamp=T + alias, name=name, datatype=dt, value=value, alias=alias))
        # Data messages by alias only, the type left out (include_dtypes=False).
        data.append(p.Metric(timestamp=T + 1000 + alias, name=None, datatype=dt, value=value, alias=alias))
        expect.append({"name": name, "alias": alias, "datatype": dt.value, "value": expected(value)})
    # A null and a historical metric.
    birth.append(p.Metric(timestamp=T, name="nothing", datatype=p.DataType.DOUBLE, is_null=True, alias=90))
    data.append(p.Metric(timestamp=T - 60000, name=None, datatype=p.DataType.DOUBLE, value=7.5, alias=91, is_historical=True))
    nbirth = p.NBirth(timestamp=T, seq=0, metrics=tuple(birth)).encode(include_dtypes=True)
    ndata = p.NData(timestamp=T + 1000, seq=1, metrics=tuple(data)).encode(include_dtypes=False)
    print(json.dumps({"nbirth": nbirth.hex(), "ndata": ndata.hex(), "metrics": expect, "t": T}))


main()
