"""Each hyperparameter is declared once (``poems_mu.module.Hyperparameters``) and every other place agrees with it."""

import inspect
import typing
from dataclasses import fields

import pytest

import poems_mu as pm
from poems_mu import nn
from poems_mu.module import DEFAULTS, Hyperparameters, POEMSModule

#: argument names of the network's blocks that stand for a declared hyperparameter
BLOCK_ARGUMENTS = {
    nn.ModalityEncoder: {"n_hidden": "n_hidden_encoder", "n_layers": "n_layers_encoder", "dropout": "dropout"},
    nn.GatingNetwork: {"n_hidden": "n_hidden_gate", "fixed": "gating"},
    nn.SparseDecoder: {
        "n_hidden": "n_hidden_decoder",
        "chunk_size": "chunk_size",
        "max_chunk_bytes": "max_chunk_bytes",
        "w_init_scale": "w_init_scale",
        "links": "decoder_links",
        "links_dense_every": "links_dense_every",
    },
    nn.DenseDecoder: {"n_hidden": "n_hidden_decoder"},
    nn.SpikeSlabLasso: {"lambda0": "lambda0", "lambda1": "lambda1", "a": "ssl_a", "b": "ssl_b"},
    nn.GaussianLikelihood: {"prior_df": "sigma_prior_df"},
}


def test_the_model_signature_takes_its_defaults_and_types_from_the_declaration():
    params = dict(inspect.signature(pm.POEMS.__init__).parameters)
    params.pop("self"), params.pop("mdata")
    params.pop("feature_sets")  # data given to the model (its sets), not a hyperparameter
    assert list(params) == Hyperparameters.names()
    hints = typing.get_type_hints(pm.POEMS.__init__)
    declared = typing.get_type_hints(Hyperparameters)
    for f in fields(Hyperparameters):
        assert params[f.name].default == f.default, f.name
        assert hints[f.name] == declared[f.name], f.name


def test_the_module_and_the_blocks_declare_no_default_of_their_own():
    module_params = inspect.signature(POEMSModule.__init__).parameters
    assert not set(module_params) & set(Hyperparameters.names())  # the module takes the declaration whole
    for block, names in BLOCK_ARGUMENTS.items():
        params = inspect.signature(block.__init__).parameters
        for argument, hyperparameter in names.items():
            assert argument in params, (block.__name__, argument)
            assert params[argument].default is inspect.Parameter.empty, (block.__name__, argument, hyperparameter)


def test_the_command_line_leaves_the_defaults_to_the_model():
    from poems_mu.cli._args import build_parser, model_kwargs

    args = build_parser().parse_args(["fit", "in.h5mu", "-o", "out.h5mu"])
    assert model_kwargs(args) == {}


def test_a_model_built_with_the_defaults_holds_the_declared_values(mixed_mudata):
    mdata = mixed_mudata(30)
    pm.POEMS.setup_mudata(mdata)
    module = pm.POEMS(mdata).module
    assert module.hparams == DEFAULTS
    assert module.n_latent == DEFAULTS.n_latent and module.kl_weight == DEFAULTS.kl_weight
    prior, dec, enc = module.priors[0], module.decoders[0], module.encoders[0]
    assert (prior.lambda0, prior.lambda1, prior.a) == (DEFAULTS.lambda0, DEFAULTS.lambda1, DEFAULTS.ssl_a)
    assert prior.b == mdata["rna"].n_vars  # ssl_b=None: b = D
    assert dec.n_hidden == DEFAULTS.n_hidden_decoder and dec.links == DEFAULTS.decoder_links
    assert dec.links_dense_every == DEFAULTS.links_dense_every
    assert enc.mean.in_features == DEFAULTS.n_hidden_encoder
    assert module.likelihoods[1].prior_df == DEFAULTS.sigma_prior_df


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"w_init_scale": -0.1}, "w_init_scale must be a finite number ≥ 0"),
        ({"prior_expert": "yes"}, "prior_expert must be True or False"),
        ({"lambda1": 0.0}, "lambda1 must be a finite number > 0"),
    ],
)
def test_the_declaration_checks_what_it_declares(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Hyperparameters(**kwargs)
