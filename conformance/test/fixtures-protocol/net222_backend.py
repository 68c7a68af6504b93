#!/usr/bin/env python3
"""A minimal nnspec backend in plain Python (standard library only): the 2-2-2 network over the pipe protocol.

    nnspec conformance --backend "cmd:python3 conformance/test/fixtures-protocol/net222_backend.py"

The protocol (docs/backend-protocol.md): one JSON object per line, then the raw little-endian bytes of the tensors
the line announces; stdout is the protocol channel, stderr is ours. This backend receives no tensors (the 2-2-2
calls carry plain numbers) but reads and writes frames in full, so it doubles as a template for any backend.
"""
import json
import math
import struct
import sys

MANIFEST = {
    "name": "python-net222",
    "version": "0.1.0",
    "precision": "float64",
    "environment": "process",
    "device": f"CPython {sys.version.split()[0]}, float (IEEE double)",
    "capabilities": ["net222.forward", "net222.gradients", "net222.step", "net222.train"],
}
WEIGHTS = ("w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8")
SIZES = {"float32": (4, "f"), "float64": (8, "d")}

# --- frames ---------------------------------------------------------------------------------------------------


def read_exactly(stream, n):
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            raise EOFError("the judge closed the pipe mid-frame")
        data += chunk
    return data


def decode(value, tensors):
    """Replace {"$tensor": k} with tensor k (a list of floats) and {"$float": "NaN"} with the float."""
    if isinstance(value, list):
        return [decode(v, tensors) for v in value]
    if isinstance(value, dict):
        if list(value) == ["$tensor"]:
            return tensors[value["$tensor"]]
        if list(value) == ["$float"]:
            return float(value["$float"].lower().replace("infinity", "inf"))
        return {k: decode(v, tensors) for k, v in value.items()}
    return value


def read_message(stream):
    line = stream.readline()
    if not line:
        return None
    message = json.loads(line)
    tensors = []
    for t in message.pop("tensors", []):
        size, code = SIZES[t["dtype"]]
        tensors.append(list(struct.unpack(f"<{t['length']}{code}", read_exactly(stream, t["length"] * size))))
    return decode(message, tensors)


def encode(value):
    """JSON has no NaN or infinity: send them as {"$float": ...}."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")}
    if isinstance(value, dict):
        return {k: encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    return value


def send(message):
    sys.stdout.buffer.write(json.dumps(encode(message), allow_nan=False).encode() + b"\n")
    sys.stdout.buffer.flush()


# --- the 2-2-2 network ------------------------------------------------------------------------------------------


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def run(c):
    h1 = c["w1"] * c["i1"] + c["w2"] * c["i2"] + c["b1"]
    h2 = c["w3"] * c["i1"] + c["w4"] * c["i2"] + c["b1"]
    a_h1, a_h2 = sigmoid(h1), sigmoid(h2)
    o1 = c["w5"] * a_h1 + c["w6"] * a_h2 + c["b2"]
    o2 = c["w7"] * a_h1 + c["w8"] * a_h2 + c["b2"]
    a_o1, a_o2 = sigmoid(o1), sigmoid(o2)
    e1 = 0.5 * (c["t1"] - a_o1) ** 2
    e2 = 0.5 * (c["t2"] - a_o2) ** 2
    forward = {"h1": h1, "a_h1": a_h1, "h2": h2, "a_h2": a_h2, "o1": o1, "a_o1": a_o1, "o2": o2, "a_o2": a_o2, "E1": e1, "E2": e2, "E_total": e1 + e2}
    d1 = (a_o1 - c["t1"]) * a_o1 * (1 - a_o1)
    d2 = (a_o2 - c["t2"]) * a_o2 * (1 - a_o2)
    eh1 = (d1 * c["w5"] + d2 * c["w7"]) * a_h1 * (1 - a_h1)
    eh2 = (d1 * c["w6"] + d2 * c["w8"]) * a_h2 * (1 - a_h2)
    gradients = {
        "w1": eh1 * c["i1"], "w2": eh1 * c["i2"], "w3": eh2 * c["i1"], "w4": eh2 * c["i2"],
        "w5": d1 * a_h1, "w6": d1 * a_h2, "w7": d2 * a_h1, "w8": d2 * a_h2,
    }
    return forward, gradients


def descend(c, g, lr):
    # Simultaneous update: every gradient was computed from the same weights.
    return {**c, **{w: c[w] - lr * g[w] for w in WEIGHTS}}


def train(c, lr, steps):
    records = []
    for step in range(steps + 1):
        forward, gradients = run(c)
        records.append({"step": step, "weights": {w: c[w] for w in WEIGHTS}, "forward": forward, "gradients": gradients})
        c = descend(c, gradients, lr)
    return records


def config(args):
    return {"b1": 0.0, "b2": 0.0, **args["config"]}


METHODS = {
    "net222.forward": lambda a: run(config(a))[0],
    "net222.gradients": lambda a: run(config(a))[1],
    "net222.step": lambda a: {w: v for w, v in descend(config(a), run(config(a))[1], a["lr"]).items() if w in WEIGHTS},
    "net222.train": lambda a: train(config(a), a["lr"], a["steps"]),
    "backend.dispose": lambda a: None,
}


def main():
    stdin = sys.stdin.buffer
    hello = read_message(stdin)
    if hello is None or hello.get("type") != "hello" or hello.get("protocol") != 1:
        send({"type": "error", "id": 0, "error": {"name": "ProtocolError", "message": f"expected hello, protocol 1; got {hello!r}"}})
        return
    send({"type": "ready", "protocol": 1, "manifest": MANIFEST})
    while (message := read_message(stdin)) is not None:
        call_id, method = message["id"], message["method"]
        try:
            if method not in METHODS:
                raise NotImplementedError(f"{method} is not implemented by this backend")
            send({"type": "result", "id": call_id, "value": METHODS[method](message["args"])})
        except Exception as e:  # noqa: BLE001 — every failure goes back to the judge as that call's error
            send({"type": "error", "id": call_id, "error": {"name": type(e).__name__, "message": str(e)}})


if __name__ == "__main__":
    main()
