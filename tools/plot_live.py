#!/usr/bin/env python3
"""The timeline of a `fervid live` run from its JSON Lines rows: per source, each window's mean
class probabilities and its label over the watch's wall clock, and below them each window's
latency (p50, p99) and the frames dropped since the window before; losses and returns marked.

  tools/plot_live.py ROWS.jsonl OUT.png [--title TEXT]

Needs matplotlib (Debian's python3-matplotlib).
"""

import argparse
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_rows(path):
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.endswith("\n"):
                break  # a line cut short is not a row
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"plot_live: {path}:{n}: not JSON: {e}")
    return rows


def plot_source(ax_p, ax_l, rows, source):
    windows = [r for r in rows if r["source"] == source and r["event"] == "window"]
    if not windows:
        return False
    t = [w["wall_s"] for w in windows]
    classes = list(windows[0]["probs"])
    for c in classes:
        ax_p.plot(t, [w["probs"][c] for w in windows], label=c, linewidth=1.4)
    last = None
    for w in windows:  # the label where it changes
        if w["label"] is not None and w["label"] != last:
            ax_p.annotate(w["label"], (w["wall_s"], w["probs"][w["label"]]), fontsize=6,
                          rotation=60, xytext=(0, 4), textcoords="offset points")
        last = w["label"]
    ax_l.plot(t, [w["latency"]["p50_ms"] for w in windows], label="latency p50 (ms)", color="k")
    ax_l.plot(t, [w["latency"]["p99_ms"] for w in windows], label="latency p99 (ms)", color="k",
              linestyle="--")
    drops = ax_l.twinx()
    drops.bar(t, [w["dropped"] for w in windows], width=0.4, alpha=0.3, color="tab:red",
              label="dropped since the window before")
    drops.set_ylabel("frames dropped")
    ax_l.set_zorder(drops.get_zorder() + 1)  # the lines over the bars
    ax_l.patch.set_visible(False)
    for r in rows:
        if r["source"] == source and r["event"] in ("lost", "back", "end"):
            for ax in (ax_p, ax_l):
                ax.axvline(r["wall_s"], color="tab:gray", linestyle=":")
            ax_p.text(r["wall_s"], 1.02, r["event"], fontsize=7, ha="center")
    ax_p.set_ylim(0, 1)
    ax_p.set_ylabel("mean probability")
    ax_p.set_title(source, fontsize=9)
    ax_p.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7)
    ax_l.set_ylabel("ms")
    ax_l.set_xlabel("wall clock (s since the watch began)")
    lines, labels = ax_l.get_legend_handles_labels()
    bars, blabels = drops.get_legend_handles_labels()
    ax_l.legend(lines + bars, labels + blabels, loc="center left", bbox_to_anchor=(1.08, 0.5),
                fontsize=7)
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rows")
    ap.add_argument("out")
    ap.add_argument("--title", default="")
    a = ap.parse_args()
    rows = read_rows(a.rows)
    sources = list(dict.fromkeys(r["source"] for r in rows if r["event"] == "window"))
    if not sources:
        sys.exit(f"plot_live: {a.rows}: no window rows")
    fig, axes = plt.subplots(2 * len(sources), 1, figsize=(10, 5 * len(sources)), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1.4] * len(sources)})
    for i, s in enumerate(sources):
        plot_source(axes[2 * i][0], axes[2 * i + 1][0], rows, s)
    if a.title:
        fig.suptitle(a.title, fontsize=10)
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print(f"plot_live: wrote {a.out} ({len(sources)} source(s))")


if __name__ == "__main__":
    main()
