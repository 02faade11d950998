"""Keys shared by the data loader, the module and the model."""

X_PREFIX = "X_"  # registry key / minibatch key of modality data: X_<modality>
MASK_PREFIX = "M_"  # minibatch key of the observed mask of a modality: M_<modality>
INDEX_KEY = "obs_index"  # minibatch key: positions of the samples in the MuData

# result keys on the MuData (DESIGN.md §3)
LATENT_KEY = "X_poems"
GATES_KEY = "poems_gates"
CONTRIBUTIONS_KEY = "poems_contributions"
GATE_OBS_PREFIX = "poems_gate_"
W_KEY = "poems_W"
PSTAR_KEY = "poems_pstar"
EFFECTIVE_KEY = "poems_effective"
EFFECTIVE_SIGNED_KEY = "poems_effective_signed"
SIGMA_KEY = "poems_sigma"
THETA_KEY = "poems_nb_theta"  # var of a negative binomial modality: the inverse dispersion θ
UNS_KEY = "poems"
ACTIVE_FACTORS_KEY = "active_factors"  # uns["poems"][...]: the active-factor table and its rule


def x_key(modality: str) -> str:
    """Registry / minibatch key holding the data of ``modality``."""
    return f"{X_PREFIX}{modality}"


def mask_key(modality: str) -> str:
    """Minibatch key holding the observed mask of ``modality``."""
    return f"{MASK_PREFIX}{modality}"
