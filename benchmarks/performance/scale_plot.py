"""The scale benchmark's plot: ``scale.png`` (seconds per epoch and peak RSS against features and samples, both
decoders, the straight-line extrapolation to 24 GB) from the sections' JSON files; ``scale.py`` runs it after each
section.

    python benchmarks/performance/scale_plot.py [--out benchmarks/results]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common, _baselines

import _common as common
import numpy as np
from scale_report import fit_limit, load


def plot(out: Path) -> None:
    """``<out>/scale.png`` from ``scale_features.json`` and ``scale_samples.json`` (nothing if neither exists)."""
    features, samples = load(out, "features")[0], load(out, "samples")[0]
    if not features and not samples:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(features, "features", "number of features"), (samples, "n", "number of samples")]
    panels = [p for p in panels if p[0]]
    fig, axes = plt.subplots(2, len(panels), figsize=(5.5 * len(panels), 7), squeeze=False)
    for col, (rows, key, xlabel) in enumerate(panels):
        for impl, label, style in (("poems", "POEMS (chunked, this package)", "o-"), ("paper", "paper decoder", "s--")):
            ok = [r for r in rows if r["impl"] == impl and r["status"] == "ok"]
            xs = [sum(r["dims"]) if key == "features" else r["n"] for r in ok]
            axes[0, col].plot(xs, [r["s_per_epoch"] for r in ok], style, label=label)
            axes[1, col].plot(xs, [r["peak_rss_mb"] / 1024 for r in ok], style, label=label)
            failed = [r for r in rows if r["impl"] == impl and r["status"] != "ok"]
            for r in failed:
                x = sum(r["dims"]) if key == "features" else r["n"]
                axes[1, col].axvline(x, color="grey", ls=":", lw=1)
                cap = f" ({r['mem_limit_gb']:g} GB cap)" if r.get("mem_limit_gb") else ""
                axes[1, col].text(x, 0.5, f" {impl}: {r['status']}{cap}", rotation=90, va="bottom", fontsize=7)
        for row in range(2):
            axes[row, col].set_xscale("log")
            axes[row, col].set_yscale("log")
            axes[row, col].set_xlabel(xlabel)
            axes[row, col].grid(alpha=0.3, which="both")
            if key == "n":
                xs = sorted({r["n"] for r in rows})
                axes[row, col].set_xticks(xs, [f"{x:,}" for x in xs])
                axes[row, col].minorticks_off()
                if row == 1:
                    axes[row, col].set_yscale("linear")
                    axes[row, col].set_ylim(bottom=0)
        axes[0, col].set_ylabel("seconds per epoch (CPU, 1 thread)")
        axes[1, col].set_ylabel("peak RSS (GB)")
        if key == "features":
            ax = axes[1, col]
            ax.axhline(24, color="red", lw=1)
            for impl, color in (("poems", "C0"), ("paper", "C1")):
                fit = fit_limit(rows, impl, rows[0]["n"])
                if fit:  # the straight-line extrapolation to 24 GB
                    xs = np.geomspace(fit["largest_run"], fit["max_features_24gb"], 50)
                    ax.plot(xs, (fit["intercept_mb"] + xs * fit["mb_per_1k_features"] / 1e3) / 1024, ":", color=color)
                    ax.plot([fit["max_features_24gb"]], [24], "x", color=color, ms=8)
                    ax.annotate(
                        f"{fit['max_features_24gb']:,.0f} (extrapolated)",
                        (fit["max_features_24gb"], 24),
                        textcoords="offset points",
                        xytext=(-10, -14 if impl == "poems" else 6),
                        ha="right" if impl == "poems" else "center",
                        fontsize=7,
                        color=color,
                    )
            ax.text(ax.get_xlim()[0], 24, " 24 GB", color="red", va="bottom", fontsize=8)
        axes[0, col].legend(fontsize=8)
    fig.suptitle("POEMS scale: K = 32, H = 100, batch 512")
    fig.tight_layout()
    fig.savefig(out / "scale.png", dpi=120)
    plt.close(fig)


def main(argv=None) -> None:
    plot(common.parser(__doc__, seeds=None, quick=False).parse_args(argv).out)


if __name__ == "__main__":
    main()
