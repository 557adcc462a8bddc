#!/usr/bin/env python3
"""The demo's work done by plain PyTorch in Python: a floor for Python frameworks (Flower & co.).

Three worker processes (one per simulated site, one compute thread each, like Flower clients) each
hold one IID third of PneumoniaMNIST's train split; for 5 rounds the parent sends the global
weights, each worker trains the same CNN (GroupNorm variant, common/model/zoo.h) for 1 local epoch
with Adam lr 1e-3, batch 32, and returns its weights; the parent averages them weighted by sample
count (FedAvg) and evaluates on the test split. No networking, no TLS, no serialisation format:
what any Python framework built on PyTorch must at least spend on this job.

Usage: /usr/bin/python3 bench/pytorch_baseline.py DATA_ROOT   (Debian's python3-torch)
Prints wall-clock seconds, per-round seconds, final test ACC/AUC, and peak RSS of parent/workers.
"""
import multiprocessing as mp
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROUNDS, SITES, EPOCHS, BATCH, LR, SEED = 5, 3, 1, 32, 1e-3, 0


class Net(nn.Module):
    def __init__(self, c=1, k=2):
        super().__init__()
        self.conv1 = nn.Conv2d(c, 32, 3)
        self.gn1 = nn.GroupNorm(8, 32)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.gn2 = nn.GroupNorm(8, 64)
        self.fc1 = nn.Linear(64 * 12 * 12, 128)
        self.fc2 = nn.Linear(128, k)

    def forward(self, x):
        x = F.relu(self.gn1(self.conv1(x)))
        x = F.relu(self.gn2(self.conv2(x)))
        x = F.dropout(torch.flatten(F.max_pool2d(x, 2), 1), 0.25, self.training)
        x = F.dropout(F.relu(self.fc1(x)), 0.5, self.training)
        return self.fc2(x)


def load(root, split):
    d = np.load(f"{root}/medmnist/pneumoniamnist.npz")
    x = torch.from_numpy(d[f"{split}_images"]).float().div(255).sub(0.5).div(0.5).unsqueeze(1)
    y = torch.from_numpy(d[f"{split}_labels"][:, 0].astype(np.int64))
    return x, y


def worker(root, site, conn):
    torch.set_num_threads(1)
    x, y = load(root, "train")
    g = torch.Generator().manual_seed(SEED)
    idx = torch.randperm(len(y), generator=g)[site::SITES]
    x, y = x[idx], y[idx]
    model = Net()
    while True:
        state = conn.recv()
        if state is None:
            break
        model.load_state_dict(state)
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=LR)
        for _ in range(EPOCHS):
            perm = torch.randperm(len(y))
            for i in range(0, len(y), BATCH):
                b = perm[i:i + BATCH]
                opt.zero_grad()
                F.cross_entropy(model(x[b]), y[b]).backward()
                opt.step()
        conn.send(({k: v.detach() for k, v in model.state_dict().items()}, len(y)))
    conn.send(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def auc(scores, labels):
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    s = scores[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos = labels == 1
    n1, n0 = pos.sum(), (~pos).sum()
    return (ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)


def main():
    start = time.time()
    root = sys.argv[1] if len(sys.argv) > 1 else "../shared/data"
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    ctx = mp.get_context("spawn")
    pipes, procs = [], []
    for site in range(SITES):
        parent, child = ctx.Pipe()
        p = ctx.Process(target=worker, args=(root, site, child))
        p.start()
        pipes.append(parent)
        procs.append(p)
    xt, yt = load(root, "test")
    model = Net()
    rounds = []
    for _ in range(ROUNDS):
        t0 = time.time()
        state = model.state_dict()
        for c in pipes:
            c.send(state)
        results = [c.recv() for c in pipes]
        total = sum(n for _, n in results)
        model.load_state_dict({k: sum(s[k] * (n / total) for s, n in results) for k in state})
        model.eval()
        with torch.no_grad():  # batches of 64, as fedmed's coordinator evaluates
            p = torch.cat([F.softmax(model(xt[i:i + 64]), 1)[:, 1]
                           for i in range(0, len(yt), 64)]).numpy()
        acc = float(((p > 0.5).astype(np.int64) == yt.numpy()).mean())
        rounds.append((time.time() - t0, acc, auc(p, yt.numpy())))
    worker_rss = []
    for c in pipes:
        c.send(None)
        worker_rss.append(c.recv())
    for p in procs:
        p.join()
    wall = time.time() - start
    print(f"wall_seconds {wall:.2f}")
    for r, (s, acc, a) in enumerate(rounds, 1):
        print(f"round {r} seconds {s:.2f} acc {acc:.4f} auc {a:.4f}")
    print(f"peak_rss_mib parent {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} "
          f"worker {max(worker_rss) // 1024}")


if __name__ == "__main__":
    main()
