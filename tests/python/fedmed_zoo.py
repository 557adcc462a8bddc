"""The model zoo's networks (common/model/zoo.h: "cnn" and "resnet18", GroupNorm) rebuilt in
PyTorch, with the same module names, so that a state dict fedmed writes loads with
load_state_dict. Shared by the tests that check fedmed against PyTorch (checkpoint_test,
torchscript_test, explain_test): import it after putting this folder on sys.path."""
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
