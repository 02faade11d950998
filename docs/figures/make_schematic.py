"""Draw the landing page's POEMS schematic: ``python docs/figures/make_schematic.py`` writes poems_schematic.png."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Polygon, Rectangle

OUT = Path(__file__).with_name("poems_schematic.png")
MODS = [("mRNA", "#4C72B0"), ("miRNA", "#DD8452"), ("protein", "#55A868")]
ALPHA = [0.45, 0.35, 0.20]


def arrow(ax, xy0, xy1, **kw):
    kw = {"arrowstyle": "-|>", "mutation_scale": 12, "lw": 1.2, "color": "0.3"} | kw
    ax.add_patch(FancyArrowPatch(xy0, xy1, **kw))


def box(ax, x, y, w, h, text, fc, fontsize=10, tc="black"):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.08", fc=fc, ec="0.25", lw=1))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize, color=tc)


def main() -> None:
    rng = np.random.default_rng(3)
    fig, ax = plt.subplots(figsize=(13, 5.2))
    ax.set_xlim(0, 13)
    ax.set_ylim(0, 5.2)
    ax.axis("off")
    ys = [3.9, 2.45, 1.0]

    for (name, col), y, a in zip(MODS, ys, ALPHA, strict=True):
        # data matrix x^v
        ax.add_patch(Rectangle((0.2, y - 0.45), 0.9, 0.9, fc=col, alpha=0.35, ec=col))
        for i in range(6):
            ax.plot([0.2, 1.1], [y - 0.45 + 0.15 * i] * 2, color="white", lw=0.6)
        ax.text(0.65, y + 0.6, f"$x^{{\\mathrm{{{name}}}}}$", ha="center", fontsize=11)
        # encoder trapezoid
        ax.add_patch(Polygon([(1.4, y - 0.45), (1.4, y + 0.45), (2.3, y + 0.2), (2.3, y - 0.2)], fc=col, alpha=0.8))
        ax.text(1.85, y, "enc", ha="center", va="center", color="white", fontsize=9)
        arrow(ax, (1.12, y), (1.38, y))
        # Gaussian expert
        xs = np.linspace(2.55, 3.55, 80)
        ax.plot(xs, y - 0.3 + 0.6 * np.exp(-((xs - 3.05) ** 2) / 0.03), color=col, lw=2)
        ax.text(3.05, y - 0.48, r"$\mathcal{N}(\mu_v, \sigma_v^2)$", ha="center", fontsize=9)
        arrow(ax, (2.32, y), (2.55, y))
        # gate weight bar
        ax.add_patch(Rectangle((4.05, y - 0.3), 0.25, 0.6, fc="white", ec="0.4"))
        ax.add_patch(Rectangle((4.05, y - 0.3), 0.25, 0.6 * a / max(ALPHA), fc=col, ec="0.4"))
        ax.text(4.45, y, rf"$\alpha={a:.2f}$", va="center", fontsize=9)
        arrow(ax, (3.6, y), (4.0, y))
        arrow(ax, (5.2, y), (5.75, 2.45 + (y - 2.45) * 0.25), connectionstyle="arc3,rad=0")

    box(ax, 3.75, 4.75, 1.5, 0.38, "gating network", "#EEEEEE", fontsize=9)
    arrow(ax, (4.18, 4.73), (4.18, 4.22), ls="--")
    ax.text(4.3, 0.12, "absent modality → α = 0 exactly", ha="center", fontsize=8.5, color="0.3")

    # product of experts
    ax.add_patch(plt.Circle((6.15, 2.45), 0.42, fc="#F2E6C9", ec="0.25"))
    ax.text(6.15, 2.45, r"$\prod$", ha="center", va="center", fontsize=20)
    ax.text(6.15, 1.85, "gated product\nof experts\n(Eq. 1)", ha="center", va="top", fontsize=9)
    # shared latent z
    for k in range(6):
        ax.add_patch(Rectangle((7.25, 1.85 + 0.2 * k), 0.3, 0.2, fc=plt.cm.Purples(0.3 + 0.1 * k), ec="0.3"))
    ax.text(7.4, 3.2, "$z$", ha="center", fontsize=13)
    ax.text(7.4, 1.75, "shared\nlatent", ha="center", va="top", fontsize=9)
    arrow(ax, (6.58, 2.45), (7.23, 2.45))

    for (name, col), y in zip(MODS, ys, strict=True):
        # sparse W_v: a few non-zero entries per row
        w = (rng.random((6, 6)) < 0.22) * rng.uniform(0.4, 1.0, (6, 6))
        w[np.arange(6), rng.integers(0, 6, 6)] = rng.uniform(0.6, 1.0, 6)
        ax.imshow(w, cmap="Greys", vmin=0, vmax=1, extent=(8.2, 9.0, y - 0.4, y + 0.4), zorder=2)
        ax.add_patch(Rectangle((8.2, y - 0.4), 0.8, 0.8, fill=False, ec="0.3", zorder=3))
        ax.text(8.6, y + 0.5, f"$z \\odot W_{{\\mathrm{{{name}}}}}$", ha="center", fontsize=10)
        arrow(ax, (7.57, 2.45), (8.15, y), connectionstyle="arc3,rad=0")
        # decoder and reconstruction
        ax.add_patch(Polygon([(9.35, y - 0.2), (9.35, y + 0.2), (10.25, y + 0.45), (10.25, y - 0.45)], fc=col))
        ax.text(9.8, y, "dec", ha="center", va="center", color="white", fontsize=9)
        arrow(ax, (9.05, y), (9.33, y))
        ax.add_patch(Rectangle((10.6, y - 0.45), 0.9, 0.9, fc=col, alpha=0.35, ec=col))
        ax.text(11.05, y + 0.6, f"$\\hat{{x}}^{{\\mathrm{{{name}}}}}$", ha="center", fontsize=11)
        arrow(ax, (10.27, y), (10.58, y))

    ax.text(
        11.75,
        2.45,
        "feature $j$ sees only\n$z \\odot W_v[j]$:\n$W_v[j,k]=0$ cuts\nfactor $k$ off $j$\n\n"
        "spike-and-slab\nlasso prior on $W_v$",
        va="center",
        fontsize=9,
    )
    fig.savefig(OUT, dpi=110, bbox_inches="tight", facecolor="white")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
