"""``poems-mu fit``: train POEMS on an ``.h5mu`` file, store the results on it, write it and the model."""

from __future__ import annotations

from pathlib import Path

from poems_mu._constants import CONSENSUS_LATENT_KEY, LATENT_KEY

from ._args import CLIError, model_kwargs, setup_kwargs
from ._run import check_writable, evaluate, is_global_zero, model_dir, say, several_devices, train, write_h5mu
from ._summary import summary


def run_fit(args) -> int:
    """Run ``poems-mu fit``; returns the exit status."""
    import mudata
    import scvi

    from poems_mu import POEMS
    from poems_mu.model._results import result_targets

    output = Path(args.output)
    folder = model_dir(output)
    check_writable([output, folder], args.overwrite)
    if not Path(args.input).is_file():
        raise CLIError(f"input file {args.input!r} does not exist")
    if output.resolve() == Path(args.input).resolve():
        raise CLIError("the output must be a different file from the input")
    setup, model_args = setup_kwargs(args), model_kwargs(args)  # malformed options fail before reading the file
    if args.runs > 1 and several_devices(args):
        raise CLIError("--runs trains its runs one after another on one device: pass --devices 1 (or leave --runs 1)")
    try:
        mdata = mudata.read_h5mu(args.input)
    except (OSError, ValueError, KeyError) as err:
        raise CLIError(f"cannot read {args.input!r} as a MuData (.h5mu) file: {err}") from None
    scvi.settings.seed = args.seed
    POEMS.setup_mudata(mdata, **setup)
    model = POEMS(mdata, **model_args)
    existing = [f"{where}[{key!r}]" for where, store, key in result_targets(model, mdata) if key in store]
    if existing:
        # results of an earlier model: the output gets this model's results only (the input file is not touched)
        say(f"Note: {args.input} holds earlier POEMS results; {output} will hold the new ones instead.")
        mdata.uns.pop("poems", None)
    say(f"Training POEMS on {args.input}: {mdata.n_obs} samples, modalities {', '.join(model.modalities)}")
    seconds = train(model, args)
    if not is_global_zero(model):  # DDP: the other ranks re-run this command; only rank 0 writes
        return 0
    runs = [model]
    for seed in range(args.seed + 1, args.seed + args.runs):
        say(f"Run {len(runs) + 1} of {args.runs} (seed {seed})")
        scvi.settings.seed = seed
        runs.append(POEMS(mdata, **model_args))
        seconds += train(runs[-1], args)
    model.store_results(overwrite=True)
    mdata.obsm.pop(CONSENSUS_LATENT_KEY, None)  # an earlier fit's: the output holds this command's results only
    keys = [LATENT_KEY]
    if args.runs > 1:
        from poems_mu import tl

        tl.consensus_embedding(runs, mdata)
        keys.append(CONSENSUS_LATENT_KEY)
    metrics = evaluate(mdata, args.label_key, keys) if args.label_key else None
    output.parent.mkdir(parents=True, exist_ok=True)
    write_h5mu(mdata, output)
    model.save(str(folder), overwrite=args.overwrite)
    print(summary(mdata, model, seconds, metrics, [output, folder], title=f"POEMS fit: {args.input}"))
    return 0
