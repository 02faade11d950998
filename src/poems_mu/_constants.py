"""Keys shared by the data loader, the module and the model: minibatch entries and where results go on a MuData."""

# -- minibatch (and registry) keys --------------------------------------------------------------------------------
X_PREFIX = "X_"  # data of a modality: X_<modality>
MASK_PREFIX = "M_"  # observed mask of a modality: M_<modality>
LIBRARY_PREFIX = "L_"  # library sizes of a count modality from ``size_factor_key``: L_<modality>
INDEX_KEY = "obs_index"  # positions of the samples in the MuData
COVARIATES_KEY = "covariates"  # the encoded covariates (samples × C); also the registry key of their field

# -- results on the MuData ----------------------------------------------------------------------------------------
LATENT_KEY = "X_poems"
CONSENSUS_LATENT_KEY = "X_poems_consensus"  # obsm: the consensus of several runs (tl.consensus_embedding)
GATES_KEY = "poems_gates"
CONTRIBUTIONS_KEY = "poems_contributions"
GATE_OBS_PREFIX = "poems_gate_"
W_KEY = "poems_W"
PSTAR_KEY = "poems_pstar"
EFFECTIVE_KEY = "poems_effective"
EFFECTIVE_SIGNED_KEY = "poems_effective_signed"
FEATURE_PARAMETER_PREFIX = "poems_"  # var of a modality: its likelihood's per-feature parameter, poems_<name>
SIGMA_KEY = "poems_sigma"  # var of a Gaussian modality: the residual SD in data units
THETA_KEY = "poems_nb_theta"  # var of a negative binomial modality: the inverse dispersion θ
UNS_KEY = "poems"
ACTIVE_FACTORS_KEY = "active_factors"  # uns["poems"][...]: the active-factor table and its rule
CONSENSUS_KEY = "consensus"  # uns["poems"][...][key_added]: the summary of a consensus embedding of several runs


def x_key(modality: str) -> str:
    """Registry / minibatch key holding the data of ``modality``."""
    return f"{X_PREFIX}{modality}"


def mask_key(modality: str) -> str:
    """Minibatch key holding the observed mask of ``modality``."""
    return f"{MASK_PREFIX}{modality}"


def library_key(modality: str) -> str:
    """Minibatch key holding the library sizes of ``modality`` (only with ``size_factor_key``)."""
    return f"{LIBRARY_PREFIX}{modality}"


def feature_parameter_key(parameter: str) -> str:
    """``var`` key of a likelihood's per-feature parameter (``"sigma"`` → ``"poems_sigma"``)."""
    return f"{FEATURE_PARAMETER_PREFIX}{parameter}"
