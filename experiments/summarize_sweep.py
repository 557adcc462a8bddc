#!/usr/bin/env python3
"""Summarises a fedmed-simulate sweep over seeds: mean and sample standard deviation.

Usage: experiments/summarize_sweep.py SWEEP_DIR [SWEEP_DIR ...]

Reads SWEEP_DIR/sweep.csv (written by fedmed-simulate, simulator/experiment.h) and prints
Markdown tables: one row per combination of the swept values other than the seed (strategy,
alpha, sites, epsilon), with the test ACC and AUC of the final round (mean +- std over the seeds),
the same for the round chosen on the validation split when the sweep has the selection columns
([simulation] select_split), the pooled baseline's, the per-seed AUC gap federated - pooled, and
how many seeds reach the published MedMNIST v2 ResNet-18 (28 px) AUC of 0.944. Standard library
only; every number printed is read from sweep.csv.
"""
import csv
import statistics
import sys
from collections import OrderedDict

PUBLISHED_AUC = 0.944


def number(text):
    return float(text) if text not in ("", None) else None


def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def reaching(values):
    values = [v for v in values if v is not None]
    return f"{sum(v >= PUBLISHED_AUC for v in values)}/{len(values)}"


def summarise(sweep_dir):
    with open(f"{sweep_dir}/sweep.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0].keys()) if rows else []
    swept = header[1:header.index("exit_status")]
    keys = [k for k in swept if k != "seed"]
    selected = "selected_auc" in header
    baseline = "baseline_auc" in header
    failed = [r["run"] for r in rows if r["exit_status"] != "0"]
    rows = [r for r in rows if r["exit_status"] == "0"]
    groups = OrderedDict()
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)

    print(f"## {sweep_dir}/sweep.csv: {len(rows)} successful runs"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    print()
    cols = keys + ["seeds", "final ACC", "final AUC"]
    if selected:
        cols += ["val-selected ACC", "val-selected AUC", "selected rounds"]
    if baseline:
        cols += ["AUC gap to pooled (final), per seed", "mean gap"]
    cols += ["seeds >= 0.944 (final" + (" / selected)" if selected else ")")]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for key, group in groups.items():
        g = lambda c: [number(r.get(c)) for r in group]
        cells = list(key) + [",".join(r.get("seed", "-") for r in group),
                             mean_std(g("global_acc")), mean_std(g("global_auc"))]
        if selected:
            cells += [mean_std(g("selected_acc")), mean_std(g("selected_auc")),
                      ",".join(r["selected_round"] or "-" for r in group)]
        if baseline:
            gaps = [f - p for f, p in zip(g("global_auc"), g("baseline_auc"))
                    if f is not None and p is not None]
            cells += [" ".join(f"{v:+.4f}" for v in gaps),
                      f"{statistics.mean(gaps):+.4f}" if gaps else "-"]
        reach = reaching(g("global_auc"))
        if selected:
            reach += " / " + reaching(g("selected_auc"))
        cells.append(reach)
        print("| " + " | ".join(cells) + " |")
    if baseline:
        seen = OrderedDict()
        for r in rows:
            seen.setdefault(r.get("seed", "-"), r)
        b = lambda c: [number(r.get(c)) for r in seen.values()]
        print()
        print("Pooled baseline (same model and [training], rounds x local_epochs epochs), one per "
              "seed:")
        print()
        cols = ["seeds", "final ACC", "final AUC"]
        if selected:
            cols += ["val-selected ACC", "val-selected AUC", "selected epochs"]
        cols += ["seeds >= 0.944 (final" + (" / selected)" if selected else ")")]
        print("| " + " | ".join(cols) + " |")
        print("|" + "---|" * len(cols))
        cells = [",".join(seen.keys()), mean_std(b("baseline_acc")), mean_std(b("baseline_auc"))]
        if selected:
            cells += [mean_std(b("baseline_selected_acc")), mean_std(b("baseline_selected_auc")),
                      ",".join(r["baseline_selected_epoch"] or "-" for r in seen.values())]
        reach = reaching(b("baseline_auc"))
        if selected:
            reach += " / " + reaching(b("baseline_selected_auc"))
        cells.append(reach)
        print("| " + " | ".join(cells) + " |")
    print()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for directory in sys.argv[1:]:
        summarise(directory.rstrip("/"))
