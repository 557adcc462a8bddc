# The figures of fedmed-report (embedded into the binary): reads report.json, writes roc.png,
# pr.png, confusion.png, calibration.png, rounds.png and sites.png into OUT_DIR. Every number is
# computed by fedmed-report in C++; this script only draws. Exit status 3: matplotlib missing.
# usage: plot_report.py REPORT_JSON OUT_DIR
import json
import sys

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    sys.exit(3)


def name(t, k):
    names = t.get("class_names") or []
    return names[k] if k < len(names) else str(k)


def main():
    report = json.load(open(sys.argv[1]))
    out = sys.argv[2]
    t = report["test"]
    auc = t["auc"]

    fig, ax = plt.subplots(figsize=(5, 5))
    for c in t["roc"]:
        ax.plot(c["fpr"], c["tpr"], label=f"{name(t, c['class'])} vs rest: AUC {c['auc']:.3f}")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel("1 - specificity (false positive rate)")
    ax.set_ylabel("sensitivity (true positive rate)")
    ax.set_title(f"ROC, AUC {auc['value']:.3f} [{auc['lower']:.3f}, {auc['upper']:.3f}] "
                 f"({auc['method']})", fontsize=9)
    for p in t.get("operating_points", []):
        ax.plot(1 - p["specificity"]["value"], p["sensitivity"]["value"], "o",
                label=f"{p['name']} ({p['threshold']:.3f})")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(f"{out}/roc.png", dpi=100)

    fig, ax = plt.subplots(figsize=(5, 5))
    for c in t["pr"]:
        ax.step(c["recall"], c["precision"], where="post",
                label=f"{name(t, c['class'])}: AP {c['average_precision']:.3f}")
        ax.axhline(c["prevalence"], color="gray", lw=0.6, ls=":")
    ax.set_xlabel("recall (sensitivity)")
    ax.set_ylabel("precision (positive predictive value)")
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision-recall", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(f"{out}/pr.png", dpi=100)

    m = t["confusion_matrix"]
    k = len(m)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.imshow(m, cmap="Blues")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(m[i][j]), ha="center", va="center", fontsize=10)
    ax.set_xticks(range(k), [name(t, j) for j in range(k)], fontsize=7)
    ax.set_yticks(range(k), [name(t, i) for i in range(k)], fontsize=7)
    ax.set_xlabel("predicted (argmax)")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix", fontsize=9)
    fig.tight_layout()
    fig.savefig(f"{out}/confusion.png", dpi=100)

    cal = t["calibration"]
    b = cal["bins"]
    fig, ax = plt.subplots(figsize=(5, 5))
    centres = [(i + 0.5) / b for i in range(b)]
    ax.bar(centres, [a if n else 0 for a, n in zip(cal["accuracy"], cal["count"])],
           width=1 / b, edgecolor="k", alpha=0.7, label="accuracy per bin")
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel("confidence (probability of the predicted class)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability: ECE {cal['ece']:.3f}, Brier {cal['brier']:.3f}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(f"{out}/calibration.png", dpi=100)

    rounds = report["rounds"]
    fig, ax = plt.subplots(figsize=(6, 4))
    for which in ("global", "federated"):
        for key, style in (("auc", "-o"), ("accuracy", "--s")):
            xs = [r["round"] for r in rounds if which in r and key in r[which]]
            ys = [r[which][key] for r in rounds if which in r and key in r[which]]
            if xs:
                ax.plot(xs, ys, style, label=f"{which} {key}")
    ax.set_xlabel("round")
    ax.set_title("Metrics per round", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(f"{out}/rounds.png", dpi=100)

    fig, ax = plt.subplots(figsize=(6, 4))
    for site, rs in sorted(report["sites"].items()):
        xs = [r["round"] for r in rs if isinstance(r.get("auc"), (int, float))]
        ys = [r["auc"] for r in rs if isinstance(r.get("auc"), (int, float))]
        if xs:
            ax.plot(xs, ys, "-o", label=site)
    ax.set_xlabel("round")
    ax.set_ylabel("AUC on the site's test images")
    ax.set_title("Per site (federated evaluation)", fontsize=9)
    if report["sites"]:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(f"{out}/sites.png", dpi=100)


if __name__ == "__main__":
    main()
