"""Small feature-set tables shipped with the package, for enrichment without a download."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

SETS_DIR = Path(__file__).resolve().parent / "_sets"


def breast_tcga_feature_sets(modality: str | None = None) -> pd.DataFrame:
    """Hand-curated feature sets for the panels of :func:`breast_tcga`, in decoupler's long format.

    The panels are small (200 genes, 184 miRNAs, 142 proteins) and the mRNA panel lacks most textbook breast
    markers (ESR1, ERBB2, KRT5, MKI67, FOXA1 and GATA3 are absent), so public collections such as MSigDB match
    few of its genes. These 15 sets are built from what the panels hold: 8 protein sets (pathway membership by
    protein identity: PI3K/AKT/mTOR, MAPK/ERK, ERBB receptors, DNA damage response, BCL-2 family; and marker groups:
    luminal hormone receptors with ER-alpha, PR, AR, GATA3 and Bcl-2, proliferation, mesenchymal), 4 mRNA sets
    (E2F targets / proliferation, interferon-stimulated, myeloid, extracellular matrix) and 3 miRNA sets
    (the miR-200 and let-7 seed families, the miR-17~92 clusters). They were compiled for poems_mu from the
    features' identities and are meant for demonstration and tests, not as a published resource: the column
    ``basis`` says what each set rests on. For real analyses, fetch MSigDB or PROGENy through ``decoupler.op``.

    Parameters
    ----------
    modality
        ``"mrna"``, ``"mirna"`` or ``"protein"`` to keep the sets of that modality only (default: all).

    Returns
    -------
    DataFrame with columns ``modality``, ``source`` (set name), ``target`` (feature name as in the modality's
    ``var_names``) and ``basis``; pass it (or its rows of one modality) to :func:`poems_mu.tl.enrichment`.

    """
    table = pd.read_csv(SETS_DIR / "breast_tcga_feature_sets.csv", dtype=str)
    if modality is None:
        return table
    known = sorted(table["modality"].unique())
    if modality not in known:
        raise KeyError(f"No feature sets for modality {modality!r}; choose from {known}.")
    return table[table["modality"] == modality].reset_index(drop=True)
