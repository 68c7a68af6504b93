#!/usr/bin/python3
"""The spec CNN in PyTorch behind the `CnnModel` contract (spec/src/cnn/contract.ts), driven over pipes by
tools/src/peer/pytorch-backend.ts, so that `nnspec train --backend pytorch` trains PyTorch with exactly the
batches, initial parameters, dropout masks (the spec's rule, computed in TypeScript) and lr/momentum schedule
of every nnspec backend. Forward, backward (autograd) and BatchNorm are PyTorch's, float32, CPU.

Framing, both directions: u32 LE header length, header (UTF-8 JSON), u32 LE payload length, payload (raw
little-endian float32 / uint8 arrays, as the header says). Replies come in request order; a failure is a reply
{"ok": false, "error": "..."} and the server goes on. EOF on stdin ends it.
"""
import json
import struct
import sys
import traceback

import torch
import torch.nn as nn
import torch.nn.functional as F

CHANNELS = 16
STDIN, STDOUT = sys.stdin.buffer, sys.stdout.buffer


def read_exact(n):
    buf = STDIN.read(n)
    if buf is None or len(buf) < n:
        raise EOFError
    return buf


def read_message():
    (hl,) = struct.unpack("<I", read_exact(4))
    header = json.loads(read_exact(hl).decode("utf-8"))
    (pl,) = struct.unpack("<I", read_exact(4))
    return header, read_exact(pl) if pl else b""


def write_message(header, payload=b""):
    h = json.dumps(header, allow_nan=True).encode("utf-8")
    STDOUT.write(struct.pack("<I", len(h)) + h + struct.pack("<I", len(payload)))
    if payload:
        STDOUT.write(payload)
    STDOUT.flush()


class Dropout(nn.Module):
    """Inverted dropout with the contract's mask (0/1 per element, NCHW) given by the caller: kept elements are
    scaled by 1/(1 − p). Named Dropout so the summary lists it as torchsummary does."""

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x, mask=None):
        return x if mask is None else x * mask * (1.0 / (1.0 - self.p))


BLOCKS = ["block1", "block2", "block3", "pool1", "block4", "block5", "block6", "pool2", "block7", "block8", "block9",
          "gap", "logits", "logProbs"]


class Net(nn.Module):
    """The spec CNN (spec/src/cnn/architecture.ts); attribute names give the spec's state_dict names."""

    def __init__(self):
        super().__init__()
        for i in range(1, 10):
            setattr(self, f"conv{i}", nn.Conv2d(1 if i == 1 else CHANNELS, CHANNELS, 3, padding=1))
            setattr(self, f"bn{i}", nn.BatchNorm2d(CHANNELS, eps=1e-5, momentum=0.1))
        self.pool = nn.MaxPool2d(2)
        self.drop1, self.drop2, self.drop3 = Dropout(0.2), Dropout(0.2), Dropout(0.15)
        self.fc = nn.Linear(CHANNELS, 10)

    def forward(self, x, masks=None, rec=None):
        """masks: three 0/1 tensors or None (dropout off); rec: a dict to fill with the named block outputs."""
        keep = (lambda name, t: rec.__setitem__(name, t)) if rec is not None else (lambda name, t: None)
        m = masks or (None, None, None)

        def block(i, x):
            x = F.relu(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x)))
            keep(f"block{i}", x)
            return x

        for i in (1, 2, 3):
            x = block(i, x)
        x = self.drop1(self.pool(x), m[0])
        keep("pool1", x)
        for i in (4, 5, 6):
            x = block(i, x)
        x = self.drop2(self.pool(x), m[1])
        keep("pool2", x)
        for i in (7, 8, 9):
            x = block(i, x)
        x = self.drop3(x, m[2]).mean(dim=(2, 3))
        keep("gap", x)
        x = self.fc(x)
        keep("logits", x)
        x = F.log_softmax(x, dim=1)
        keep("logProbs", x)
        return x


def summary_rows():
    """The torchsummary table of this model: one row per module call (Conv2d, BatchNorm2d, MaxPool2d, Dropout,
    Linear), with its output shape without the batch and its parameter count."""
    net, rows, hooks = Net(), [], []
    for mod in net.modules():
        if isinstance(mod, (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, Dropout, nn.Linear)):
            def hook(mod, _inp, out):
                rows.append({"layer": f"{type(mod).__name__}-{len(rows) + 1}", "outputShape": list(out.shape[1:]),
                             "params": sum(p.numel() for p in mod.parameters())})
            hooks.append(mod.register_forward_hook(hook))
    net.eval()
    with torch.no_grad():
        net(torch.zeros(1, 1, 28, 28))
    for h in hooks:
        h.remove()
    return rows


def f32(values):
    return torch.frombuffer(bytearray(values), dtype=torch.float32)


def to_bytes(tensors):
    return b"".join(t.detach().to(torch.float32).contiguous().reshape(-1).numpy().tobytes() for t in tensors)


class Model:
    def __init__(self, names, sizes, payload):
        self.net = Net()
        sd = self.net.state_dict()
        flat = f32(payload)
        off = 0
        with torch.no_grad():
            for name, size in zip(names, sizes):
                if name not in sd:
                    raise KeyError(f"unknown tensor {name}")
                t = sd[name]
                if t.numel() != size:
                    raise ValueError(f"{name}: {size} values, PyTorch has {t.numel()}")
                t.copy_(flat[off:off + size].reshape(t.shape).to(t.dtype))
                off += size
        self.param_names = [n for n, _ in self.net.named_parameters()]
        self.buffer_names = [n for n, _ in self.net.named_buffers()]
        self.params = dict(self.net.named_parameters())
        self.momentum = {}
        self.pending = None

    def forward(self, h, payload):
        """Returns the log-probabilities and, when asked (record), every block output in BLOCKS order."""
        n = h["n"]
        x = f32(payload[:n * 784 * 4]).reshape(n, 1, 28, 28)
        rec = {} if h.get("record") else None
        if h["mode"] == "eval":
            self.net.eval()
            self.pending = None
            with torch.no_grad():
                out = self.net(x, None, rec)
        else:
            self.net.train()
            masks = None
            if h.get("dropout"):
                masks, off = [], n * 784 * 4
                for shape in h["maskShapes"]:
                    size = 1
                    for d in shape:
                        size *= d
                    masks.append(torch.frombuffer(bytearray(payload[off:off + size]), dtype=torch.uint8).reshape(shape).to(torch.float32))
                    off += size
            for prm in self.net.parameters():
                prm.grad = None
            out = self.net(x, masks, rec)
            self.pending = out
        blocks = [rec[b] for b in BLOCKS] if rec is not None else []
        return [out] + blocks

    def backward(self, labels):
        if self.pending is None:
            raise RuntimeError("backward without a train-mode forward")
        y = torch.frombuffer(bytearray(labels), dtype=torch.uint8).long()
        loss = F.nll_loss(self.pending, y)
        loss.backward()
        self.pending = None
        return loss.item()

    def step(self, lr, momentum, weight_decay):
        # spec sgdUpdate: g = grad + wd·p; buf = g on the first step, else m·buf + g; p −= lr·buf (torch.optim.SGD).
        with torch.no_grad():
            for name, prm in self.params.items():
                g = prm.grad if weight_decay == 0 else prm.grad + weight_decay * prm
                buf = self.momentum.get(name)
                if buf is None:
                    buf = g.clone()
                    self.momentum[name] = buf
                else:
                    buf.mul_(momentum).add_(g)
                prm.add_(buf, alpha=-lr)


def main():
    models = {}
    while True:
        try:
            h, payload = read_message()
        except EOFError:
            return
        try:
            op = h["op"]
            reply, out = {"ok": True}, b""
            if op == "hello":
                torch.set_num_threads(int(h.get("threads", 1)))
                torch.manual_seed(0)  # nothing here draws random numbers; fixed anyway
                reply.update(torch=torch.__version__, threads=torch.get_num_threads())
            elif op == "summary":
                reply["rows"] = summary_rows()
            elif op == "create":
                models[h["id"]] = Model(h["names"], h["sizes"], payload)
            else:
                m = models[h["id"]]
                if op == "forward":
                    tensors = m.forward(h, payload)
                    reply["sizes"] = [t.numel() for t in tensors]
                    out = to_bytes(tensors)
                elif op == "backward":
                    reply["loss"] = m.backward(payload)
                elif op == "gradients":
                    out = to_bytes([m.params[n].grad for n in h["names"]])
                elif op == "step":
                    m.step(h["lr"], h["momentum"], h["weightDecay"])
                elif op == "parameters":
                    out = to_bytes([m.params[n] for n in h["names"]])
                elif op == "buffers":
                    bufs = dict(m.net.named_buffers())
                    out = to_bytes([bufs[n] for n in h["names"]])
                elif op == "optimizerState":
                    reply["empty"] = len(m.momentum) == 0
                    out = b"" if reply["empty"] else to_bytes([m.momentum[n] for n in h["names"]])
                elif op == "setOptimizerState":
                    if not payload:
                        m.momentum = {}
                    else:
                        flat, off, mom = f32(payload), 0, {}
                        for n, size in zip(h["names"], h["sizes"]):
                            mom[n] = flat[off:off + size].reshape(m.params[n].shape).clone()
                            off += size
                        m.momentum = mom
                elif op == "dispose":
                    models.pop(h["id"], None)
                else:
                    raise ValueError(f"unknown op {op}")
            write_message(reply, out)
        except Exception as e:  # noqa: BLE001 — reported to the caller, which throws it
            write_message({"ok": False, "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()[-2000:]})


if __name__ == "__main__":
    main()
