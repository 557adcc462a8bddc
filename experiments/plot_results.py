#!/usr/bin/python3
"""Plots of fedmed-simulate results (Debian's python3-matplotlib; nothing else needed).

Usage: plot_results.py DIR [DIR ...]

DIR is a run directory (it holds coordinator/metrics.jsonl) or a directory of runs (a sweep:
every subdirectory that holds coordinator/metrics.jsonl). Writes, and prints as "wrote PATH":

  <run>/global_metrics.png   global AUC and ACC per round of that run (the pooled baseline of
                             baseline.json, when there is one, as a dashed line)
  <run>/site_metrics.png     each site's local test ACC and AUC under the final global model
                             (the "sites" of the last round of metrics.jsonl that has them, i.e.
                             with [evaluation] federated = true)
  DIR/global_metrics.png     for a directory of runs: the curves of every run in one figure

fedmed-simulate runs this at the end of a simulation when matplotlib can be imported.
"""

import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from matplotlib.ticker import MaxNLocator  # noqa: E402


def read_rows(run_dir):
    """The rounds of metrics.jsonl, skipping a last line still being written."""
    rows = []
    with open(os.path.join(run_dir, "coordinator", "metrics.jsonl")) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except ValueError:
                break
    return rows


def read_baseline(run_dir):
    """The pooled baseline's global metrics (baseline.json), or None."""
    path = os.path.join(run_dir, "baseline.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f).get("global")


def metric(m, key):
    """m[key] when m is a dict holding a number there, else None."""
    if isinstance(m, dict) and isinstance(m.get(key), (int, float)):
        return float(m[key])
    return None


def find_runs(directory):
    """Run directories at or directly under `directory`, sorted by name."""
    if os.path.exists(os.path.join(directory, "coordinator", "metrics.jsonl")):
        return [directory]
    runs = []
    for name in sorted(os.listdir(directory)):
        sub = os.path.join(directory, name)
        if os.path.exists(os.path.join(sub, "coordinator", "metrics.jsonl")):
            runs.append(sub)
    return runs


def plot_curves(runs, out_path, title):
    """Global AUC and ACC per round, one line per run, baselines dashed in the run's colour."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    last_round = 1
    for index, run in enumerate(runs):
        rows = read_rows(run)
        last_round = max([last_round] + [r["round"] for r in rows])
        label = os.path.basename(os.path.normpath(run))
        colour = "C%d" % (index % 10)
        baseline = read_baseline(run)
        for ax, key in zip(axes, ("auc", "accuracy")):
            points = [(r["round"], metric(r.get("global"), key)) for r in rows]
            points = [(x, y) for x, y in points if y is not None]
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o",
                        color=colour, label=label)
            pooled = metric(baseline, key)
            if pooled is not None:
                ax.axhline(pooled, color=colour, linestyle="--", linewidth=1,
                           label=label + " (pooled)")
    for ax, name in zip(axes, ("global AUC", "global ACC")):
        ax.set_xlabel("round")
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
        ax.set_xlim(0.5, last_round + 0.5)
        if last_round <= 20:
            ax.set_xticks(range(1, last_round + 1))
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)),
                   fontsize="small", frameon=False)
        bottom = 0.04 + 0.06 * ((len(labels) + 3) // 4)
    else:
        bottom = 0.0
    fig.suptitle(title)
    fig.tight_layout(rect=(0, min(bottom, 0.5), 1, 1))
    fig.savefig(out_path, dpi=120)
    plt.close(fig)
    print("wrote " + out_path)


def plot_sites(run, out_path):
    """Per-site local test ACC and AUC of the final global model; False when there are none."""
    rows = read_rows(run)
    sites = None
    for r in reversed(rows):
        if isinstance(r.get("sites"), dict) and r["sites"]:
            sites, round_number = r["sites"], r["round"]
            break
    if not sites:
        return False
    # site-2 before site-10
    def order(name):
        head, _, tail = name.rpartition("-")
        return (head, int(tail)) if tail.isdigit() else (name, 0)
    names = sorted(sites, key=order)
    acc = [metric(sites[n], "accuracy") for n in names]
    auc = [metric(sites[n], "auc") for n in names]
    width = 0.4
    xs = range(len(names))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.32 * len(names) + 2), 4.2))
    ax.bar([x - width / 2 for x in xs], [v if v is not None else 0 for v in acc], width,
           label="ACC")
    ax.bar([x + width / 2 for x in xs], [v if v is not None else 0 for v in auc], width,
           label="AUC (0 where undefined: one class only)")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(names, rotation=90 if len(names) > 12 else 0, fontsize="small")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("local test metric")
    ax.set_title("%s\neach site's local test split, global model of round %d"
                 % (os.path.basename(os.path.normpath(run)), round_number), fontsize="medium")
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_path, dpi=120)
    plt.close(fig)
    print("wrote " + out_path)
    return True


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    status = 0
    for directory in argv[1:]:
        runs = find_runs(directory)
        if not runs:
            sys.stderr.write("no coordinator/metrics.jsonl at or under %s\n" % directory)
            status = 1
            continue
        for run in runs:
            name = os.path.basename(os.path.normpath(run))
            plot_curves([run], os.path.join(run, "global_metrics.png"), name)
            plot_sites(run, os.path.join(run, "site_metrics.png"))
        if len(runs) > 1 or runs[0] != directory:
            plot_curves(runs, os.path.join(directory, "global_metrics.png"),
                        os.path.basename(os.path.normpath(directory)))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
