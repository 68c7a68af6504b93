#!/usr/bin/python3
"""PyTorch peer for `nnspec bench`: the spec CNN (and the 2-2-2 network) in PyTorch, float32, CPU, 2 threads,
measuring the same figures as the nnspec backends, reported with the same protocol
(tools/src/bench/protocol.ts): one JSON message per line on file descriptor 3.

Usage (spawned by the bench): /usr/bin/python3 tools/bench-peer/peer.py <job.json>
The job names the MNIST folder (the four official .gz IDX files, read here), the training subset and the initial
parameters (peer data file), so the peer trains on the same images from the same start as the backends.
"""
import gzip
import json
import math
import os
import resource
import struct
import sys
import time
import traceback

PROCESS_AT = time.time() * 1000
REPORT = os.fdopen(3, "w", buffering=1)
NORMALIZE_MEAN, NORMALIZE_STD = 0.1307, 0.3081
CHANNELS = 16


def send(msg):
    REPORT.write(json.dumps(msg, allow_nan=False) + "\n")


def rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux


def data(patch):
    send({"type": "data", "patch": patch, "rssBytes": rss_bytes()})


def phase(name, body, skip=None):
    send({"type": "phase", "name": name})
    if skip:
        send({"type": "phase-end", "name": name, "status": "skipped", "detail": skip})
        return True
    try:
        detail = body()
        msg = {"type": "phase-end", "name": name, "status": "ok"}
        if detail:
            msg["detail"] = detail
        send(msg)
        return True
    except Exception:  # noqa: BLE001 — every failure is reported, the bench goes on
        send({"type": "phase-end", "name": name, "status": "failed", "detail": traceback.format_exc()[-3000:]})
        return False


def rate_stats(units, samples_ms, unit):
    rates = sorted(units / (max(ms, 1e-6) / 1000) for ms in samples_ms)
    n = len(rates)
    median = rates[n // 2] if n % 2 else (rates[n // 2 - 1] + rates[n // 2]) / 2
    return {"median": median, "min": rates[0], "max": rates[-1], "reps": n, "unit": unit}


def time_reps(warmup, reps, fn):
    for i in range(warmup):
        fn(i)
    out = []
    for i in range(reps):
        t0 = time.perf_counter()
        fn(warmup + i)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def read_idx(path, kind):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = struct.unpack(">I", raw[:4])[0]
    if kind == "images":
        if magic != 2051:
            raise ValueError(f"{path}: not an IDX image file (magic {magic})")
        n, rows, cols = struct.unpack(">III", raw[4:16])
        return raw[16:], n
    if magic != 2049:
        raise ValueError(f"{path}: not an IDX label file (magic {magic})")
    return raw[8:], struct.unpack(">I", raw[4:8])[0]


def main():
    job = json.load(open(sys.argv[1]))
    settings, reps = job["settings"], job["reps"]
    state = {}

    def load():
        import torch
        import torch.nn as nn
        import torch.nn.functional as F

        torch.set_num_threads(2)
        torch.manual_seed(settings["seed"])

        class Net(nn.Module):
            """The spec CNN (spec/src/cnn/architecture.ts); attribute names give the spec's state_dict names."""

            def __init__(self):
                super().__init__()
                for i in range(1, 10):
                    setattr(self, f"conv{i}", nn.Conv2d(1 if i == 1 else CHANNELS, CHANNELS, 3, padding=1))
                    setattr(self, f"bn{i}", nn.BatchNorm2d(CHANNELS, eps=1e-5, momentum=0.1))
                self.pool = nn.MaxPool2d(2)
                self.drop1, self.drop2, self.drop3 = nn.Dropout(0.2), nn.Dropout(0.2), nn.Dropout(0.15)
                self.fc = nn.Linear(CHANNELS, 10)

            def forward(self, x):
                b = lambda i, x: F.relu(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x)))  # noqa: E731
                for i in (1, 2, 3):
                    x = b(i, x)
                x = self.drop1(self.pool(x))
                for i in (4, 5, 6):
                    x = b(i, x)
                x = self.drop2(self.pool(x))
                for i in (7, 8, 9):
                    x = b(i, x)
                x = self.drop3(x).mean(dim=(2, 3))
                return F.log_softmax(self.fc(x), dim=1)

        peer = json.load(open(job["peerDataFile"]))
        state.update(torch=torch, F=F, Net=Net, peer=peer)
        make_model()
        t_first = time.time() * 1000
        state["model"].eval()
        with torch.no_grad():
            state["model"](torch.zeros(1, 1, 28, 28))
        data({"device": f"PyTorch {torch.__version__}, CPU, {torch.get_num_threads()} threads", "precision": "float32",
              "startup": {"processAt": PROCESS_AT, "backendLoadMs": t_first - PROCESS_AT, "firstResultAt": time.time() * 1000}})
        return f"PyTorch {torch.__version__}"

    def make_model():
        torch = state["torch"]
        model = state["Net"]()
        params = state["peer"]["parameters"]
        sd = model.state_dict()
        with torch.no_grad():
            for name, values in params.items():
                sd[name].copy_(torch.tensor(values, dtype=torch.float32).reshape(sd[name].shape))
        state["model"] = model
        return model

    def synthetic(n, seed):
        torch = state["torch"]
        g = torch.Generator().manual_seed(seed)
        return torch.rand(n, 1, 28, 28, generator=g) * 3 - 0.4, torch.randint(0, 10, (n,), generator=g)

    def net222_speed():
        torch = state["torch"]
        cfg, lr = state["peer"]["net222"]["config"], state["peer"]["net222"]["lr"]
        x = torch.tensor([cfg["i1"], cfg["i2"]])
        t = torch.tensor([cfg["t1"], cfg["t2"]])

        def train(steps):
            w_h = torch.tensor([[cfg["w1"], cfg["w2"]], [cfg["w3"], cfg["w4"]]], requires_grad=True)
            w_o = torch.tensor([[cfg["w5"], cfg["w6"]], [cfg["w7"], cfg["w8"]]], requires_grad=True)
            for _ in range(steps):
                a_h = torch.sigmoid(w_h @ x + cfg["b1"])
                a_o = torch.sigmoid(w_o @ a_h + cfg["b2"])
                loss = 0.5 * ((t - a_o) ** 2).sum()
                gh, go = torch.autograd.grad(loss, (w_h, w_o))
                with torch.no_grad():
                    w_h -= lr * gh
                    w_o -= lr * go

        steps = 16
        while True:
            t0 = time.perf_counter()
            train(steps)
            ms = (time.perf_counter() - t0) * 1000
            if ms >= job["net222TargetMs"] or steps >= 200000:
                break
            steps = min(200000, max(steps * 2, math.ceil(steps * min(16, job["net222TargetMs"] / max(ms, 0.01)))))
        ms = time_reps(1, reps["net222"], lambda i: train(steps))
        data({"speed": {"net222StepsPerSecond": rate_stats(steps, ms, "steps/s")}})
        return f"{steps} steps per repetition (autograd, float32)"

    def train_speed():
        torch, F = state["torch"], state["F"]
        model = make_model()
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x, y = synthetic(128, settings["seed"])

        def step(_i):
            opt.zero_grad()
            F.nll_loss(model(x), y).backward()
            opt.step()

        data({"speed": {"trainImagesPerSecond": rate_stats(128, time_reps(1, reps["train"], step), "images/s")}})

    def infer_speed():
        torch = state["torch"]
        model = make_model()
        model.eval()
        big, _ = synthetic(128, settings["seed"] + 1)
        one, _ = synthetic(1, settings["seed"] + 2)
        with torch.no_grad():
            ms128 = time_reps(1, reps["infer128"], lambda i: model(big))
            ms1 = time_reps(5, reps["infer1"], lambda i: model(one))
        data({"speed": {"inferImagesPerSecondBatch128": rate_stats(128, ms128, "images/s"),
                        "inferImagesPerSecondBatch1": rate_stats(1, ms1, "images/s")}})

    def mnist_train():
        torch, F = state["torch"], state["F"]
        d = job["mnistDir"]
        train_px, n_train = read_idx(os.path.join(d, "train-images-idx3-ubyte.gz"), "images")
        train_lb, _ = read_idx(os.path.join(d, "train-labels-idx1-ubyte.gz"), "labels")
        test_px, n_test = read_idx(os.path.join(d, "t10k-images-idx3-ubyte.gz"), "images")
        test_lb, _ = read_idx(os.path.join(d, "t10k-labels-idx1-ubyte.gz"), "labels")
        norm = lambda raw, n: ((torch.frombuffer(bytearray(raw), dtype=torch.uint8).float() / 255 - NORMALIZE_MEAN) / NORMALIZE_STD).reshape(n, 1, 28, 28)  # noqa: E731
        xs_all, ys_all = norm(train_px, n_train), torch.frombuffer(bytearray(train_lb), dtype=torch.uint8).long()
        subset = torch.tensor(state["peer"]["subset"], dtype=torch.long)
        xs, ys = xs_all[subset], ys_all[subset]
        test_n = min(settings["testLimit"] or n_test, n_test)
        xt = norm(test_px, n_test)[:test_n]
        yt = torch.frombuffer(bytearray(test_lb), dtype=torch.uint8).long()[:test_n]

        model = make_model()
        batch, epochs = settings["batchSize"], settings["epochs"]
        n = len(subset)
        steps_per_epoch = math.ceil(n / batch)
        opt = torch.optim.SGD(model.parameters(), lr=settings["maxLr"], momentum=0.9)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=settings["maxLr"], total_steps=epochs * steps_per_epoch)
        batch_loss, epoch_acc = [], []
        t0 = time.perf_counter()
        train_secs = 0.0
        last = None
        for epoch in range(epochs):
            model.train()
            order = torch.randperm(n, generator=torch.Generator().manual_seed(settings["seed"] * 1000 + epoch))
            te = time.perf_counter()
            for b in range(steps_per_epoch):
                idx = order[b * batch:(b + 1) * batch]
                opt.zero_grad()
                loss = F.nll_loss(model(xs[idx]), ys[idx])
                loss.backward()
                opt.step()
                sched.step()
                batch_loss.append(loss.item())
                if (b + 1) % 5 == 0 or b + 1 == steps_per_epoch:
                    send({"type": "progress", "text": f"epoch {epoch + 1}/{epochs} batch {b + 1}/{steps_per_epoch}, loss {loss.item():.3f}"})
            train_secs += time.perf_counter() - te
            model.eval()
            nll, correct = 0.0, 0
            with torch.no_grad():
                for s in range(0, test_n, 1000):
                    lp = model(xt[s:s + 1000])
                    nll -= lp.gather(1, yt[s:s + 1000, None]).sum().item()
                    correct += (lp.argmax(1) == yt[s:s + 1000]).sum().item()
            last = (correct / test_n, nll / test_n)
            epoch_acc.append(last[0])
        data({"training": {"epochs": epochs, "trainImages": n, "testImages": test_n, "testAccuracy": last[0], "testLoss": last[1],
                           "wallSeconds": time.perf_counter() - t0, "imagesPerSecond": n * epochs / train_secs,
                           "batchLoss": batch_loss, "epochTestAccuracy": epoch_acc}})
        return f"test accuracy {100 * last[0]:.2f}%"

    if not phase("load", load):
        send({"type": "done"})
        return
    phase("conformance", None, skip="the peer is PyTorch itself (the CNN goldens come from PyTorch in float64)")
    phase("net222-speed", net222_speed)
    phase("train-speed", train_speed)
    phase("infer-speed", infer_speed)
    phase("mnist-train", mnist_train, skip=None if job["mnistDir"] else "no MNIST data (set MNIST_DIR)")
    data({})
    send({"type": "done"})


if __name__ == "__main__":
    main()
