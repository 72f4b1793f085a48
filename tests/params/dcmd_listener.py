"""Listens for Sparkplug B commands and decodes them with an independent
implementation (the PyPI package pysparkplug), for tests/param_control.rs.

Usage: dcmd_listener.py HOST PORT FILTER
Prints `ready` once subscribed, then one JSON object per NCMD/DCMD:
{"topic", "timestamp", "seq", "metrics": [{"name", "alias", "datatype", "value"}]}.
"""
import json
import sys

import paho.mqtt.client as mqtt
import pysparkplug as p

host, port, filt = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def on_connect(client, userdata, flags, rc, *args):
    client.subscribe(filt, qos=1)


def on_subscribe(client, userdata, mid, *args):
    print("ready", flush=True)


def on_message(client, userdata, msg):
    kind = msg.topic.split("/")[2]
    cls = p.DCmd if kind == "DCMD" else p.NCmd
    try:
        d = cls.decode(msg.payload)
    except Exception as e:  # the test reads this as a failure
        print(json.dumps({"topic": msg.topic, "error": repr(e)}), flush=True)
        return
    print(
        json.dumps(
            {
                "topic": msg.topic,
                "qos": msg.qos,
                "timestamp": d.timestamp,
                "seq": getattr(d, "seq", None),
                "metrics": [
                    {
                        "name": m.name,
                        "alias": m.alias,
                        "datatype": int(m.datatype) if m.datatype is not None else None,
                        "value": m.value,
                    }
                    for m in d.metrics
                ],
            }
        ),
        flush=True,
    )


client = mqtt.Client(client_id="pysparkplug-dcmd-listener")
client.on_connect = on_connect
client.on_subscribe = on_subscribe
client.on_message = on_message
client.connect(host, port)
client.loop_forever()
