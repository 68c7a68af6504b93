#!/usr/bin/python3
"""nnspec backend: PyTorch (CPU), float32 by default, over the pipe protocol (docs/backend-protocol.md).

    nnspec conformance --backend "cmd:/usr/bin/python3 backends/pytorch/backend.py"
    nnspec conformance --backend "cmd:/usr/bin/python3 backends/pytorch/backend.py" --precision float64

An independent implementation of the contract (spec/): the CNN is torch.nn layers and autograd, the optimizer is
torch.optim.SGD, the 2-2-2 network is autograd on 2×2 matrices (no hand-derived formula). What the spec fixes and
PyTorch leaves open is implemented from the spec: state_dict names and order, the dropout mask rule
(spec/src/rng.ts), the recorded block outputs (spec/src/cnn/architecture.ts). Max-pool ties go to the first maximum,
which is PyTorch's own rule. Options (the hello message's, e.g. from --precision):
{"precision": "float32" | "float64", "threads": N, "onednn": bool} — threads is torch.set_num_threads (default
$NNSPEC_TORCH_THREADS, else torch's own); onednn turns on oneDNN's kernels (default $NNSPEC_TORCH_ONEDNN, else off:
the portable ones). It is also the training peer of `nnspec train --backend pytorch` (tools/src/workspace-backends.ts
loads it with threads 1 and oneDNN), so the PyTorch that trains is the PyTorch that is judged.
"""
import ctypes
import math
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nnspec_pipe  # noqa: E402

VERSION = "0.1.0"

try:
    import numpy as np  # a dependency of torch (python3-numpy)
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:
    # Answer the judge's hello with the reason (one line, exit 2 there) instead of dying with a traceback.
    def refuse(_options, reason=f"PyTorch is not importable by {sys.executable} ({e}); run this script with Debian's /usr/bin/python3 (python3-torch)"):
        raise RuntimeError(reason)

    if __name__ == "__main__":
        nnspec_pipe.serve(refuse, lambda t: t, lambda x: None)
    sys.exit(0)

# The portable kernels by default: no judged result depends on oneDNN's blocking. The "onednn" option turns oneDNN on
# (a training step over 10× faster on one thread, PyTorch 1.13): the training peer's setting, judged in it too.
torch.backends.mkldnn.enabled = False


def keep_freed_memory() -> None:
    """glibc hands a freed block above its mmap threshold back to the kernel at once, so a training step's
    activations (MiBs each) would be fresh pages every step: page faults measured at ~15 % of a step at batch 128
    (the former training peer escaped them by its allocation pattern). Keep such blocks in the heap instead."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return  # not glibc: its allocator, its defaults
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 32 << 20)  # a batch of 128's largest activation is 6.4 MiB
    libc.mallopt(m_trim_threshold, 512 << 20)


keep_freed_memory()

CHANNELS = 16
NUM_CLASSES = 10
BN_EPS, BN_MOMENTUM = 1e-5, 0.1
M32 = 0xFFFFFFFF
WEIGHTS = ("w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8")
FORWARD = ("h1", "a_h1", "h2", "a_h2", "o1", "a_o1", "o2", "a_o2", "E1", "E2", "E_total")


# --- tensors across the pipe ------------------------------------------------------------------------------------


def to_tensor(t):
    dtype = torch.float64 if t.dtype == "float64" else torch.float32
    return torch.frombuffer(bytearray(t.data), dtype=dtype) if t.length > 0 else torch.zeros(0, dtype=dtype)


def from_tensor(x):
    if not isinstance(x, torch.Tensor):
        return None
    x = x.detach().contiguous().reshape(-1).cpu()
    if x.dtype == torch.float32:
        return nnspec_pipe.Tensor("float32", x.numel(), x.numpy().astype("<f4", copy=False).tobytes())
    return nnspec_pipe.Tensor("float64", x.numel(), x.to(torch.float64).numpy().astype("<f8", copy=False).tobytes())


# --- the dropout mask rule (spec/src/rng.ts), vectorised over element indices -----------------------------------


def mix32(x):
    x = (x ^ (x >> 16)) & M32
    x = (x * 0x21F0AAAD) & M32
    x = (x ^ (x >> 15)) & M32
    x = (x * 0x735A2D97) & M32
    return (x ^ (x >> 15)) & M32


def dropout_keep(seed, layer, step, count, p):
    """Keep mask (bool, length count) of dropout layer `layer` in training forward `step` under `seed`."""
    base = mix32(mix32((seed ^ 0x9E3779B9) & M32) ^ ((layer * 0x85EBCA6B + step) & M32))
    # uint32 arithmetic is the hash's own: products and shifts wrap and shift as in rng.ts (Math.imul, >>>).
    x = np.arange(count, dtype=np.uint32)
    x ^= np.uint32(base)
    x ^= x >> 16
    x *= np.uint32(0x21F0AAAD)
    x ^= x >> 15
    x *= np.uint32(0x735A2D97)
    x ^= x >> 15
    return torch.from_numpy(x >= np.uint32(math.floor(p * 4294967296)))


# --- the CNN ----------------------------------------------------------------------------------------------------


class Dropout(nn.Module):
    """Inverted dropout with the shared mask rule; the identity unless the forward pass sets a (seed, step)."""

    def __init__(self, p, index):
        super().__init__()
        self.p, self.index = p, index
        self.rule = None

    def forward(self, x):
        if self.rule is None or not self.training:
            return x
        seed, step, p = self.rule
        keep = dropout_keep(seed, self.index, step, x.numel(), p).reshape(x.shape)
        # As torch's own dropout: the mask scaled by 1/(1 − p) in the tensor's dtype, then one multiply.
        return x * (keep.to(x.dtype) / (1 - p))


class Net(nn.Module):
    """Attribute names are the spec's layer names, so state_dict keys are CNN_PARAMS / CNN_BUFFERS names in order."""

    def __init__(self):
        super().__init__()
        for i in range(1, 10):
            setattr(self, f"conv{i}", nn.Conv2d(1 if i == 1 else CHANNELS, CHANNELS, 3, padding=1, bias=True))
            setattr(self, f"bn{i}", nn.BatchNorm2d(CHANNELS, eps=BN_EPS, momentum=BN_MOMENTUM))
        self.pool1 = nn.MaxPool2d(2)
        self.drop1 = Dropout(0.2, 0)
        self.pool2 = nn.MaxPool2d(2)
        self.drop2 = Dropout(0.2, 1)
        self.drop3 = Dropout(0.15, 2)
        self.fc = nn.Linear(CHANNELS, NUM_CLASSES)

    def forward(self, x, record=None):
        def rec(name, t):
            if record is not None:
                record[name] = t
            return t

        def block(i, x):
            return rec(f"block{i}", F.relu(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x))))

        for i in (1, 2, 3):
            x = block(i, x)
        # A pool is recorded after the dropout that follows it: what the next layer sees (recordedBlocks in spec).
        x = rec("pool1", self.drop1(self.pool1(x)))
        for i in (4, 5, 6):
            x = block(i, x)
        x = rec("pool2", self.drop2(self.pool2(x)))
        for i in (7, 8, 9):
            x = block(i, x)
        x = rec("gap", self.drop3(x).mean(dim=(2, 3)))
        x = rec("logits", self.fc(x))
        return rec("logProbs", F.log_softmax(x, dim=1))


def check_labels(labels, n):
    """The labels rule of CnnModel.backward (spec validateLabels)."""
    if len(labels) != n:
        raise ValueError(f"{len(labels)} labels for a batch of {n}")
    for i, y in enumerate(labels):
        if y != int(y) or not 0 <= y < NUM_CLASSES:
            raise ValueError(f"labels[{i}] = {y} is not a class in 0..{NUM_CLASSES - 1}")


class Model:
    def __init__(self, dtype, parameters, buffers):
        self.dtype = dtype
        self.net = Net().to(dtype)
        self.pending = None  # (log-probs with their graph, batch size) of the last train-mode forward
        self.optimizer = None
        with torch.no_grad():
            for name, p in self.net.named_parameters():
                p.copy_(self._tensor(parameters, name, p.numel()).view(p.shape))
            if buffers is not None:
                for name, b in self.net.named_buffers():
                    b.copy_(self._tensor(buffers, name, b.numel()).view(b.shape).to(b.dtype))

    @staticmethod
    def _tensor(group, name, size):
        if name not in group:
            raise ValueError(f'"{name}" is missing')
        t = group[name]
        if t.numel() != size:
            raise ValueError(f'"{name}" has {t.numel()} values, expected {size}')
        return t

    def summary(self):
        rows, hooks = [], []
        for module in self.net.modules():
            if isinstance(module, (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, Dropout, nn.Linear)):
                def hook(m, _inputs, out):
                    rows.append({"layer": f"{type(m).__name__}-{len(rows) + 1}", "outputShape": list(out.shape[1:]), "params": sum(p.numel() for p in m.parameters())})
                hooks.append(module.register_forward_hook(hook))
        try:
            self.net.eval()
            with torch.no_grad():
                self.net(torch.zeros(1, 1, 28, 28, dtype=self.dtype))
        finally:
            for h in hooks:
                h.remove()
        return rows

    def forward(self, x, n, options):
        if x.numel() != n * 28 * 28:
            raise ValueError(f"input has {x.numel()} values, expected n·784 = {n * 784}")
        x = x.to(self.dtype).reshape(n, 1, 28, 28)
        train = options["mode"] == "train"
        dropout = options.get("dropout") if train else None
        for d in (self.net.drop1, self.net.drop2, self.net.drop3):
            # A recipe may set the rates per forward (one per dropout layer); else the architecture's p.
            rates = dropout.get("rates") if dropout else None
            d.rule = (dropout["seed"], dropout["step"], rates[d.index] if rates else d.p) if dropout else None
        blocks = {} if options.get("record") else None
        self.net.train(train)
        if train:
            log_probs = self.net(x, blocks)
            self.pending = (log_probs, n)
        else:
            with torch.no_grad():
                log_probs = self.net(x, blocks)
        out = {"logProbs": log_probs}
        if blocks is not None:
            out["blocks"] = blocks
        return out

    def backward(self, labels):
        if self.pending is None:
            raise RuntimeError("backward() needs a train-mode forward() first")
        log_probs, n = self.pending
        check_labels(labels, n)
        self.pending = None
        for p in self.net.parameters():
            p.grad = None
        loss = F.nll_loss(log_probs, torch.tensor([int(y) for y in labels], dtype=torch.int64))
        loss.backward()
        return {"loss": loss.item()}

    def gradients(self):
        return {name: (p.grad if p.grad is not None else torch.zeros_like(p)) for name, p in self.net.named_parameters()}

    def step(self, sgd):
        # torch.optim.SGD is the semantics spec/src/cnn/optim.ts states (dampening 0, no Nesterov, decay on every
        # parameter); the schedule's lr and momentum arrive with each step.
        if self.optimizer is None:
            self.optimizer = torch.optim.SGD(self.net.parameters(), lr=sgd["lr"], momentum=sgd["momentum"], weight_decay=sgd["weightDecay"])
        for g in self.optimizer.param_groups:
            g["lr"], g["momentum"], g["weight_decay"] = sgd["lr"], sgd["momentum"], sgd["weightDecay"]
        self.optimizer.step()

    def parameters(self):
        return {name: p for name, p in self.net.named_parameters()}

    def buffers(self):
        return {name: b for name, b in self.net.named_buffers()}

    def optimizer_state(self):
        if self.optimizer is None:
            return {}
        state = {name: self.optimizer.state.get(p, {}).get("momentum_buffer") for name, p in self.net.named_parameters()}
        return {} if all(v is None for v in state.values()) else {k: (v if v is not None else torch.zeros(0)) for k, v in state.items()}

    def set_optimizer_state(self, state):
        params = dict(self.net.named_parameters())
        if state:
            unknown = [k for k in state if k not in params]
            if unknown:
                raise ValueError(f'optimizer state: unknown parameter "{unknown[0]}"')
            for name, p in params.items():
                t = self._tensor(state, name, p.numel())
                if not torch.isfinite(t).all():
                    raise ValueError(f'optimizer state: momentum of "{name}" is not finite')
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=0.0)
        for name, p in params.items():
            if state:
                self.optimizer.state[p]["momentum_buffer"] = state[name].to(self.dtype).view(p.shape).clone()


# --- the 2-2-2 network: autograd on 2×2 matrices ----------------------------------------------------------------


class Net222:
    def __init__(self, dtype):
        self.dtype = dtype

    def _run(self, c, weights=None):
        t = lambda *v: torch.tensor(v, dtype=self.dtype)  # noqa: E731
        w = weights if weights is not None else t(*(c[k] for k in WEIGHTS))
        w = w.detach().clone().requires_grad_(True)
        W1, W2 = w[0:4].view(2, 2), w[4:8].view(2, 2)
        x, target = t(c["i1"], c["i2"]), t(c["t1"], c["t2"])
        h = W1 @ x + c["b1"]
        ah = torch.sigmoid(h)
        o = W2 @ ah + c["b2"]
        ao = torch.sigmoid(o)
        E = 0.5 * (target - ao) ** 2
        total = E.sum()
        total.backward()
        values = (h[0], ah[0], h[1], ah[1], o[0], ao[0], o[1], ao[1], E[0], E[1], total)
        forward = {k: float(v.item()) for k, v in zip(FORWARD, values)}
        return w.detach(), forward, w.grad.detach()

    @staticmethod
    def _named(v):
        return {k: float(x) for k, x in zip(WEIGHTS, v.tolist())}

    def forward(self, c):
        return self._run(c)[1]

    def gradients(self, c):
        return self._named(self._run(c)[2])

    def step(self, c, lr):
        w, _, g = self._run(c)
        return self._named(w - lr * g)

    def train(self, c, lr, steps):
        records, w = [], None
        for step in range(steps + 1):
            w, forward, g = self._run(c, w)
            records.append({"step": step, "weights": self._named(w), "forward": forward, "gradients": self._named(g)})
            w = w - lr * g
        return records


# --- the backend --------------------------------------------------------------------------------------------------


OPTIONS = ("precision", "threads", "onednn")


def thread_count(options: dict) -> int | None:
    """The "threads" option, else $NNSPEC_TORCH_THREADS (unset, empty or 0: torch's default), checked."""
    if "threads" in options:
        threads, source = options["threads"], 'option "threads"'
    else:
        env = os.environ.get("NNSPEC_TORCH_THREADS", "").strip()
        if env in ("", "0"):
            return None
        threads, source = (int(env) if env.isdigit() else env), "NNSPEC_TORCH_THREADS"
    # bool is an int in Python: JSON true is not a thread count.
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 256:
        raise ValueError(f"{source}: {threads!r} is not a thread count (an integer from 1 to 256)")
    return threads


def use_onednn(options: dict) -> bool:
    """The "onednn" option, else $NNSPEC_TORCH_ONEDNN (1 or 0; unset: off), checked."""
    if "onednn" in options:
        value, source = options["onednn"], 'option "onednn"'
    else:
        env = os.environ.get("NNSPEC_TORCH_ONEDNN", "").strip()
        value, source = {"": False, "0": False, "1": True}.get(env, env), "NNSPEC_TORCH_ONEDNN"
    if not isinstance(value, bool):
        raise ValueError(f"{source}: {value!r} is not a yes/no (true or false; 1 or 0 in the environment)")
    return value


class Backend:
    def __init__(self, options):
        unknown = [k for k in options if k not in OPTIONS]
        if unknown:
            raise ValueError(f'unknown option "{unknown[0]}" (this backend takes "precision", "threads" and "onednn")')
        precision = options.get("precision", "float32")
        if precision not in ("float32", "float64"):
            raise ValueError(f'option "precision": {precision!r} is not offered (float32 or float64)')
        threads, onednn = thread_count(options), use_onednn(options)  # every option checked before any is applied
        if threads is not None:
            torch.set_num_threads(threads)
        torch.backends.mkldnn.enabled = onednn
        self.dtype = torch.float32 if precision == "float32" else torch.float64
        self.net222 = Net222(self.dtype)
        self.models = {}
        self.next_handle = 0
        self.manifest = {
            "name": "pytorch",
            "version": VERSION,
            "precision": precision,
            "environment": "process",
            "device": f"PyTorch {torch.__version__} CPU{' (oneDNN)' if onednn else ''}, {precision}, {torch.get_num_threads()} thread(s), Python {sys.version.split()[0]}",
            "capabilities": ["net222.forward", "net222.gradients", "net222.step", "net222.train", "cnn.forward", "cnn.backward", "cnn.step", "cnn.dropout", "cnn.optimizer-state"],
        }

    def _model(self, args):
        handle = args["model"]
        if handle not in self.models:
            raise KeyError(f"no model with handle {handle}")
        return self.models[handle]

    def call(self, method, args):
        c = {"b1": 0.0, "b2": 0.0, **args["config"]} if "config" in args else None
        if method == "net222.forward":
            return self.net222.forward(c)
        if method == "net222.gradients":
            return self.net222.gradients(c)
        if method == "net222.step":
            return self.net222.step(c, args["lr"])
        if method == "net222.train":
            return self.net222.train(c, args["lr"], args["steps"])
        if method == "cnn.create":
            self.next_handle += 1
            self.models[self.next_handle] = Model(self.dtype, args["parameters"], args.get("buffers"))
            return {"model": self.next_handle}
        if method == "model.summary":
            return self._model(args).summary()
        if method == "model.forward":
            return self._model(args).forward(args["x"], args["n"], args["options"])
        if method == "model.backward":
            return self._model(args).backward(args["labels"])
        if method == "model.gradients":
            return self._model(args).gradients()
        if method == "model.step":
            return self._model(args).step(args["sgd"])
        if method == "model.parameters":
            return self._model(args).parameters()
        if method == "model.buffers":
            return self._model(args).buffers()
        if method == "model.optimizerState":
            return self._model(args).optimizer_state()
        if method == "model.setOptimizerState":
            return self._model(args).set_optimizer_state(args["state"])
        if method == "model.dispose":
            self._model(args)
            del self.models[args["model"]]
            return None
        if method == "backend.dispose":
            self.models.clear()
            return None
        raise NotImplementedError(f"{method} is not implemented")


if __name__ == "__main__":
    nnspec_pipe.serve(Backend, to_tensor, from_tensor)
