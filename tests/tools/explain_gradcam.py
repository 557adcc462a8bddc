# Reference Grad-CAM in PyTorch for tests/tools/explain_test.cc: rebuilds the zoo network
# (common/model/zoo.h), loads the coordinator's state dict with torch.load, computes Grad-CAM with
# a forward hook and a backward hook on the named module, image by image, and compares with
# fedmed-explain's maps (gradcam/NNNNN.npy) and probabilities (predictions.csv).
#
# usage: explain_gradcam.py MODEL STATE_DICT NPZ N LAYER EXPLAIN_OUT_DIR
#   MODEL: cnn | resnet18 (STATE_DICT: torch.save'd dict) | seq (STATE_DICT: seq.pt below)
# prints "map I MAX_ABS_DIFF" per image, "prob MAX_ABS_DIFF" and "predicted_mismatches M".
# usage: explain_gradcam.py make-scripts DIR
#   writes DIR/seq.pt, a TorchScript nn.Sequential (Seq() below), and DIR/custom.pt, a
#   TorchScript module with its own forward (Custom below).
import csv
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from fedmed_zoo import Cnn, ResNet18  # noqa: E402  (zoo.h's networks in PyTorch)


def Seq():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 8, 3), nn.ReLU(),
                         nn.Flatten(), nn.Linear(8 * 24 * 24, 2))


class Custom(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4 * 26 * 26, 2)

    def forward(self, x):
        return self.fc(F.relu(self.conv(x)).flatten(1))


def main():
    if sys.argv[1] == "make-scripts":
        torch.jit.script(Seq()).save(f"{sys.argv[2]}/seq.pt")
        torch.jit.script(Custom()).save(f"{sys.argv[2]}/custom.pt")
        return
    name, state_path, npz, n, layer, out = sys.argv[1:7]
    n = int(n)
    torch.set_num_threads(1)
    if name == "seq":
        model = Seq()
        model.load_state_dict(torch.jit.load(state_path).state_dict())
    else:
        model = Cnn() if name == "cnn" else ResNet18()
        model.load_state_dict(torch.load(state_path))
    model.eval()
    module = dict(model.named_modules())[layer]
    saved = {}
    module.register_forward_hook(lambda m, i, o: saved.__setitem__("A", o))
    module.register_full_backward_hook(lambda m, gi, go: saved.__setitem__("G", go[0]))

    images = np.load(npz)["test_images"][:n]
    x_all = (torch.as_tensor(images, dtype=torch.float32) / 255 - 0.5) / 0.5
    with open(f"{out}/predictions.csv") as f:
        rows = list(csv.DictReader(f))
    prob_diff, mismatches = 0.0, 0
    for i in range(n):
        x = x_all[i].reshape(1, 1, 28, 28).clone().requires_grad_(True)
        logits = model(x)
        k = int(logits.argmax(1))
        model.zero_grad()
        logits[0, k].backward()
        A, G = saved["A"][0].detach(), saved["G"][0]          # (C, h, w)
        alpha = G.mean(dim=(1, 2))                              # (C,)
        cam = F.relu((alpha[:, None, None] * A).sum(0))         # (h, w)
        up = F.interpolate(cam[None, None], size=(28, 28), mode="bilinear",
                           align_corners=False)[0, 0]
        lo, hi = up.min(), up.max()
        ref = (up - lo) / (hi - lo) if hi > lo else torch.zeros_like(up)
        ours = np.load(f"{out}/gradcam/{i:05d}.npy")
        assert ours.dtype == np.float32 and ours.shape == (28, 28), (ours.dtype, ours.shape)
        print(f"map {i} {np.abs(ours - ref.numpy()).max():.3e}")
        probs = torch.softmax(logits.detach(), 1)[0].numpy()
        row = rows[i]
        prob_diff = max(prob_diff, max(abs(float(row[f"p_{c}"]) - probs[c]) for c in range(2)))
        mismatches += int(row["predicted"]) != k
    print(f"prob {prob_diff:.3e}")
    print(f"predicted_mismatches {mismatches}")


if __name__ == "__main__":
    main()
