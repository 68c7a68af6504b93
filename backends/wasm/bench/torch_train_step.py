#!/usr/bin/python3
"""PyTorch's training step on the spec CNN, as tools/bench-peer/peer.py measures it for `nnspec bench` (same model,
float32, CPU, SGD momentum 0.9, batch 128, median of timed reps after a warm-up), printed in the format of the
backends' train-step benches so compare.mjs can run all three in one session.

Usage: /usr/bin/python3 backends/wasm/bench/torch_train_step.py [--reps 7] [--batch 128] [--threads 2]
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--reps", type=int, default=7)
p.add_argument("--batch", type=int, default=128)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(1)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        for i in range(1, 10):
            setattr(self, f"conv{i}", nn.Conv2d(1 if i == 1 else 16, 16, 3, padding=1))
            setattr(self, f"bn{i}", nn.BatchNorm2d(16))
        self.pool = nn.MaxPool2d(2)
        self.drop1, self.drop2, self.drop3 = nn.Dropout(0.2), nn.Dropout(0.2), nn.Dropout(0.15)
        self.fc = nn.Linear(16, 10)

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
        return F.log_softmax(self.fc(self.drop3(x).mean(dim=(2, 3))), dim=1)


model = Net().train()
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
g = torch.Generator().manual_seed(1)
x, y = torch.rand(a.batch, 1, 28, 28, generator=g) * 3 - 0.4, torch.randint(0, 10, (a.batch,), generator=g)


def step():
    t0 = time.perf_counter()
    opt.zero_grad()
    F.nll_loss(model(x), y).backward()
    opt.step()
    return (time.perf_counter() - t0) * 1000


step()
step()
times = sorted(step() for _ in range(a.reps))
median = times[len(times) // 2]
print(f"PyTorch {torch.__version__}, CPU, {torch.get_num_threads()} threads; batch {a.batch}, {a.reps} reps: median {median:.1f} ms/step "
      f"→ {a.batch / (median / 1000):.1f} images/s (best {a.batch / (times[0] / 1000):.1f})")
