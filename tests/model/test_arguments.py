"""Model and training arguments out of range: a clear error naming the argument and its range, from poems_mu."""

import pytest
from _bad_input import fails_clearly, small_mdata

import poems_mu as pm


# --- model and training arguments ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"n_latent": 0}, "n_latent must be an integer between 1 and 1024, got 0"),
        ({"n_latent": 5000}, "got 5000"),
        ({"n_latent": 2.5}, "got 2.5"),
        ({"n_latent": True}, "got True"),
        ({"n_latent": "8"}, "got '8'"),
        ({"n_hidden_encoder": 0}, "n_hidden_encoder must be a positive integer"),
        ({"n_layers_encoder": 0}, "n_layers_encoder must be a positive integer"),
        ({"dropout": 1.0}, "dropout must be in [0, 1)"),
        ({"kl_weight": -1.0}, "kl_weight must be a finite number ≥ 0"),
        ({"sigma_prior_df": 0}, "sigma_prior_df must be a finite number > 0"),
        ({"ssl_b": -2}, "ssl_b must be a finite number > 0"),
        ({"chunk_size": 0}, "chunk_size must be a positive integer or None"),
        ({"lambda0": 1.0, "lambda1": 2.0}, "lambda0 > lambda1 > 0"),
        ({"gating": "soft"}, "gating must be 'learned' or 'fixed'"),
        ({"decoder": "linear"}, "decoder must be 'sparse' or 'dense'"),
    ],
)
def test_model_arguments_out_of_range(kwargs, fragment):
    mdata = small_mdata()
    pm.POEMS.setup_mudata(mdata)
    fails_clearly(ValueError, lambda: pm.POEMS(mdata, **kwargs), fragment)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"lr": -1e-3}, "lr (learning rate) must be a finite number > 0"),
        ({"lr": float("nan")}, "got nan"),
        ({"max_epochs": 0}, "max_epochs must be a positive integer"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"train_size": 1.5}, "train_size must be in (0, 1]"),
        ({"train_size": 1.0}, "early_stopping needs a validation set"),
    ],
)
def test_training_arguments_out_of_range(kwargs, fragment):
    mdata = small_mdata()
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, n_latent=2)
    fails_clearly(ValueError, lambda: model.train(enable_progress_bar=False, **kwargs), fragment)
    assert not model.is_trained
