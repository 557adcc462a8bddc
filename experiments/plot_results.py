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
  DIR/global_metrics.png     for a directory of up to 12 runs: the curves of every run in one
                             figure (more would be unreadable)
  DIR/sweep_metrics.png      for a sweep directory (it holds sweep.csv): one column of panels per
                             value of the swept keys other than strategy and seed (e.g. alpha),
                             global AUC (top) and ACC (bottom) per round, one line per strategy:
                             the mean over the seeds, shaded from the lowest to the highest seed;
                             the pooled baselines' mean dashed in black

fedmed-simulate runs this at the end of a simulation when matplotlib can be imported.
"""

import csv
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


def read_sweep(directory):
    """(swept keys, rows of sweep.csv) of a sweep directory, or None."""
    path = os.path.join(directory, "sweep.csv")
    if not os.path.exists(path):
        return None
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "exit_status" not in rows[0]:
        return None
    header = list(rows[0].keys())
    return header[1:header.index("exit_status")], rows


def curve(run, key):
    """{round: global metric `key`} of a run."""
    return {r["round"]: metric(r.get("global"), key) for r in read_rows(run)
            if metric(r.get("global"), key) is not None}


def plot_sweep(directory, keys, rows, out_path):
    """Mean over seeds per strategy, one column of panels per value of the other swept keys."""
    line_key = "strategy" if "strategy" in keys else None
    panel_keys = [k for k in keys if k not in ("seed", line_key)]
    done = [r for r in rows if r["exit_status"] == "0"]
    panels, lines = [], []
    for r in done:
        panel = tuple(r[k] for k in panel_keys)
        if panel not in panels:
            panels.append(panel)
        line = r[line_key] if line_key else None
        if line not in lines:
            lines.append(line)
    if not panels:
        return False
    fig, axes = plt.subplots(2, len(panels), figsize=(max(5.5, 3.4 * len(panels)), 6.4),
                             squeeze=False, sharey="row")
    last_round = 1
    for column, panel in enumerate(panels):
        in_panel = [r for r in done if tuple(r[k] for k in panel_keys) == panel]
        for row_index, key in enumerate(("auc", "accuracy")):
            ax = axes[row_index][column]
            for index, line in enumerate(lines):
                runs = [os.path.join(directory, r["run"]) for r in in_panel
                        if line_key is None or r[line_key] == line]
                curves = [curve(run, key) for run in runs]
                rounds = sorted(set().union(*curves)) if curves else []
                if not rounds:
                    continue
                last_round = max(last_round, rounds[-1])
                values = [[c[x] for c in curves if x in c] for x in rounds]
                colour = "C%d" % (index % 10)
                label = "%s (mean of %d)" % (line or "federated", len(curves))
                ax.plot(rounds, [sum(v) / len(v) for v in values], marker="o", markersize=3,
                        color=colour, label=label)
                if len(curves) > 1:
                    ax.fill_between(rounds, [min(v) for v in values], [max(v) for v in values],
                                    color=colour, alpha=0.15, linewidth=0)
            pooled = [metric(read_baseline(os.path.join(directory, r["run"])), key)
                      for r in in_panel]
            pooled = [p for p in pooled if p is not None]
            if pooled:
                ax.axhline(sum(pooled) / len(pooled), color="black", linestyle="--",
                           linewidth=1, label="pooled baseline (mean)")
            ax.grid(True, alpha=0.3)
            if row_index == 0:
                ax.set_title(", ".join("%s = %s" % kv for kv in zip(panel_keys, panel))
                             or "all runs", fontsize="medium")
            else:
                ax.set_xlabel("round")
            if column == 0:
                ax.set_ylabel("global " + ("AUC" if key == "auc" else "ACC"))
    for ax in axes.flat:
        ax.set_xlim(0.5, last_round + 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)),
               fontsize="small", frameon=False)
    fig.suptitle("%s: shaded from the lowest to the highest seed"
                 % os.path.basename(os.path.normpath(directory)))
    fig.tight_layout(rect=(0, 0.06, 1, 1))
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
        if (len(runs) > 1 or runs[0] != directory) and len(runs) <= 12:
            plot_curves(runs, os.path.join(directory, "global_metrics.png"),
                        os.path.basename(os.path.normpath(directory)))
        sweep = read_sweep(directory)
        if sweep is not None:
            plot_sweep(directory, sweep[0], sweep[1], os.path.join(directory, "sweep_metrics.png"))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
