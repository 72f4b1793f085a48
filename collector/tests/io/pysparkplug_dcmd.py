"""Decodes the Sparkplug B command payloads given as hex arguments with an
independent implementation (the PyPI package pysparkplug, as a DCMD) and
prints, as JSON on stdout, each one's timestamp and its metrics' name,
alias, datatype code and value, for collector/tests/io/sparkplug.rs."""
import json
import sys

import pysparkplug as p


def main():
    out = []
    for raw in sys.argv[1:]:
        cmd = p.DCmd.decode(bytes.fromhex(raw))
        out.append({
            "timestamp": cmd.timestamp,
            "metrics": [
                {"name": m.name, "alias": m.alias, "datatype": m.datatype.value, "value": m.value}
                for m in cmd.metrics
            ],
        })
    print(json.dumps(out))


main()
