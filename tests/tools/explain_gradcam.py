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
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Cnn(nn.Module):
    def __init__(self, C=1, K=2, S=28):
        super().__init__()
        self.conv1 = nn.Conv2d(C, 32, 3)
        self.gn1 = nn.GroupNorm(8, 32)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.gn2 = nn.GroupNorm(8, 64)
        self.fc1 = nn.Linear(64 * ((S - 4) // 2) ** 2, 128)
        self.fc2 = nn.Linear(128, K)

    def forward(self, x):
        x = F.relu(self.gn1(self.conv1(x)))
        x = F.relu(self.gn2(self.conv2(x)))
        x = F.dropout(F.max_pool2d(x, 2), 0.25, self.training).flatten(1)
        x = F.dropout(F.relu(self.fc1(x)), 0.5, self.training)
        return self.fc2(x)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.gn1 = nn.GroupNorm(32, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.gn2 = nn.GroupNorm(32, cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.GroupNorm(32, cout))

    def forward(self, x):
        y = self.gn2(self.conv2(F.relu(self.gn1(self.conv1(x)))))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet18(nn.Module):
    def __init__(self, C=1, K=2):
        super().__init__()
        self.conv1 = nn.Conv2d(C, 64, 3, 1, 1, bias=False)
        self.gn1 = nn.GroupNorm(32, 64)
        widths, cin = [64, 128, 256, 512], 64
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}",
                    nn.Sequential(BasicBlock(cin, w, stride), BasicBlock(w, w, 1)))
            cin = w
        self.fc = nn.Linear(512, K)

    def forward(self, x):
        x = F.relu(self.gn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


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
