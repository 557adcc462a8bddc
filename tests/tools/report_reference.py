# Reference numbers for tests/tools/report_test.cc: scikit-learn's roc_auc_score and
# average_precision_score on fedmed-report's predictions.csv, and DeLong's interval computed
# independently of fedmed's code, with the midrank algorithm of Sun & Xu (IEEE Signal Processing
# Letters 21, 2014), compared with report.json.
# usage: report_reference.py REPORT_DIR
# prints "auc_diff D", "ap_diff D", "delong_diff D" (the largest of the AUC, SE, lower and upper
# differences) and "auc A".
import csv
import json
import math
import sys

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

Z = 1.959963984540054


def midrank(x):
    order = np.argsort(x, kind="mergesort")
    z = x[order]
    n = len(x)
    t = np.zeros(n)
    i = 0
    while i < n:
        j = i
        while j < n and z[j] == z[i]:
            j += 1
        t[i:j] = 0.5 * (i + j - 1) + 1
        i = j
    out = np.empty(n)
    out[order] = t
    return out


def delong(y, p):
    pos, neg = p[y == 1], p[y == 0]
    m, n = len(pos), len(neg)
    tx, ty = midrank(pos), midrank(neg)
    tz = midrank(np.concatenate([pos, neg]))
    auc = (tz[:m].sum() - m * (m + 1) / 2) / (m * n)
    v10 = (tz[:m] - tx) / n        # per positive
    v01 = 1 - (tz[m:] - ty) / m    # per negative
    se = math.sqrt(np.var(v10, ddof=1) / m + np.var(v01, ddof=1) / n)
    return auc, se, max(0.0, auc - Z * se), min(1.0, auc + Z * se)


def main():
    out = sys.argv[1]
    report = json.load(open(f"{out}/report.json"))
    rows = list(csv.DictReader(open(f"{out}/predictions.csv")))
    y = np.array([int(r["label"]) for r in rows])
    p = np.array([float(r["p_1"]) for r in rows])
    a = report["test"]["auc"]
    print(f"auc_diff {abs(a['value'] - roc_auc_score(y, p)):.3e}")
    ap = report["test"]["pr"][0]["average_precision"]
    print(f"ap_diff {abs(ap - average_precision_score(y, p)):.3e}")
    auc, se, lo, hi = delong(y, p)
    d = max(abs(auc - a["value"]), abs(se - a["standard_error"]), abs(lo - a["lower"]),
            abs(hi - a["upper"]))
    print(f"delong_diff {d:.3e}")
    print(f"auc {auc:.6f} [{lo:.6f}, {hi:.6f}]")


if __name__ == "__main__":
    main()
