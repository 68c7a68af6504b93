"""The nnspec pipe protocol (docs/backend-protocol.md) for a Python backend: frames, handshake, call loop.

A frame is one JSON object on one line, then the raw little-endian bytes of the tensors its top-level "tensors"
list announces; inside the object tensor k is {"$tensor": k} and a non-finite number is {"$float": "NaN"}.
stdout carries only frames (this module takes it over); print to stderr.
"""
import json
import math
import sys
import traceback

PROTOCOL_VERSION = 1
_SIZES = {"float32": 4, "float64": 8}


class Tensor:
    """A tensor as it crossed the pipe: dtype ("float32" / "float64"), length and little-endian bytes."""

    __slots__ = ("dtype", "length", "data")

    def __init__(self, dtype, length, data):
        self.dtype, self.length, self.data = dtype, length, data


def _read_exactly(stream, n):
    parts, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            raise EOFError("the judge closed the pipe in the middle of a frame")
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _substitute(value, tensors):
    if isinstance(value, list):
        return [_substitute(v, tensors) for v in value]
    if isinstance(value, dict):
        if len(value) == 1 and "$tensor" in value:
            return tensors[value["$tensor"]]
        if len(value) == 1 and "$float" in value:
            return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[value["$float"]]
        return {k: _substitute(v, tensors) for k, v in value.items()}
    return value


class Pipe:
    def __init__(self, to_tensor, from_tensor):
        """to_tensor(Tensor) -> the backend's tensor; from_tensor(x) -> Tensor, or None when x is not a tensor."""
        self._in = sys.stdin.buffer
        # Keep the real stdout for frames; anything else printed goes to stderr.
        self._out = sys.stdout.buffer
        sys.stdout = sys.stderr
        self._to_tensor, self._from_tensor = to_tensor, from_tensor

    def read(self):
        line = self._in.readline()
        if not line:
            return None
        message = json.loads(line)
        tensors = []
        for t in message.pop("tensors", []):
            data = _read_exactly(self._in, t["length"] * _SIZES[t["dtype"]])
            tensors.append(self._to_tensor(Tensor(t["dtype"], t["length"], data)))
        return _substitute(message, tensors)

    def send(self, message):
        tensors, payload = [], []

        def encode(value):
            t = self._from_tensor(value)
            if t is not None:
                tensors.append({"dtype": t.dtype, "length": t.length})
                payload.append(t.data)
                return {"$tensor": len(tensors) - 1}
            if isinstance(value, float) and not math.isfinite(value):
                return {"$float": "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")}
            if isinstance(value, dict):
                return {k: encode(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [encode(v) for v in value]
            return value

        body = encode(message)
        if tensors:
            body["tensors"] = tensors
        self._out.write(json.dumps(body, allow_nan=False, separators=(",", ":")).encode("utf-8") + b"\n")
        for p in payload:
            self._out.write(p)
        self._out.flush()


def _error(e):
    return {"name": type(e).__name__, "message": str(e) or type(e).__name__, "stack": "".join(traceback.format_exception(type(e), e, e.__traceback__))}


def serve(create, to_tensor, from_tensor):
    """create(options) -> backend with .manifest (dict) and .call(method, args); serves until stdin closes."""
    pipe = Pipe(to_tensor, from_tensor)
    hello = pipe.read()
    if hello is None:
        return
    if hello.get("type") != "hello" or hello.get("protocol") != PROTOCOL_VERSION:
        pipe.send({"type": "error", "id": 0, "error": {"name": "ProtocolError", "message": f"expected hello with protocol {PROTOCOL_VERSION}"}})
        return
    try:
        backend = create(hello.get("options") or {})
    except Exception as e:  # noqa: BLE001 — the judge reports why the backend could not be created
        pipe.send({"type": "error", "id": 0, "error": _error(e)})
        return
    pipe.send({"type": "ready", "protocol": PROTOCOL_VERSION, "manifest": backend.manifest})
    while (message := pipe.read()) is not None:
        try:
            value = backend.call(message["method"], message.get("args") or {})
            pipe.send({"type": "result", "id": message["id"], "value": value})
        except Exception as e:  # noqa: BLE001 — every failure is that call's error
            pipe.send({"type": "error", "id": message["id"], "error": _error(e)})
