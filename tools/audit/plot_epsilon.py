#!/usr/bin/python3
"""Plots cumulative epsilon per site over rounds, with each site's budget as a dashed line.

Usage: plot_epsilon.py DATA.json OUT.png

DATA.json is written by `fedmed-audit report --plot`:
  {"title": str,
   "sites": [{"site": str, "rounds": [int], "epsilon_total": [float],
              "budgets": [float] (the budget in force at each of those rounds),
              "budget_epsilon": float (the latest budget), "delta": float}]}
Exit status: 0 on success, 3 if matplotlib is not installed, 1 on any other error.
fedmed-audit embeds this script and runs it with /usr/bin/python3 (Debian's python3-matplotlib).
"""
import json
import sys


def main(argv):
    if len(argv) != 3:
        print("usage: plot_epsilon.py DATA.json OUT.png", file=sys.stderr)
        return 1
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed for " + sys.executable, file=sys.stderr)
        return 3
    with open(argv[1], encoding="utf-8") as f:
        data = json.load(f)

    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    max_round = 1
    for i, site in enumerate(data["sites"]):
        color = colors[i % len(colors)]
        rounds = site["rounds"]
        eps = site["epsilon_total"]
        if rounds:
            max_round = max(max_round, max(rounds))
            ax.plot(rounds, eps, marker="o", markersize=4, drawstyle="steps-post",
                    color=color, label=f"{site['site']} (epsilon {eps[-1]:.3g})")
        budgets = site.get("budgets") or []
        budget = site.get("budget_epsilon") or 0
        if rounds and len(budgets) == len(rounds) and len(set(budgets)) > 1:
            # The budget changed over time: draw it as it was at each round.
            ax.plot([0] + rounds + [rounds[-1] + 1], [budgets[0]] + budgets + [budgets[-1]],
                    linestyle="--", linewidth=1, drawstyle="steps-post", color=color,
                    label=f"{site['site']} budget (now {budget:.3g})")
        elif budget > 0:
            ax.axhline(budget, linestyle="--", linewidth=1, color=color,
                       label=f"{site['site']} budget {budget:.3g}")
    deltas = sorted({s["delta"] for s in data["sites"] if s.get("delta")})
    delta_text = ", ".join(f"{d:.3g}" for d in deltas) if deltas else "?"
    ax.set_xlabel("round")
    ax.set_ylabel(f"cumulative epsilon (delta = {delta_text})")
    ax.set_title(data.get("title", "Privacy spent per site"))
    ax.set_xlim(left=0, right=max_round + 1)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(argv[2], format="png")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except Exception as e:  # one line for fedmed-audit to show
        print(f"plot_epsilon.py: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
