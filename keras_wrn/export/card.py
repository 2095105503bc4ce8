"""Model cards: `model_card.json` and `MODEL_CARD.md` beside the exports of
one model (an export folder holds one trained model in several formats).

The card states what the model is (name, parameters, MACs), what it was
trained and tested on, its test error as `keras-wrn evaluate` measures it,
and for every artifact its own test error and parity with the Keras model,
the command that made it and the versions that made it.
"""

import datetime
import json
import os
import shlex

from keras_wrn import files
from keras_wrn.export.source import ExportError
from keras_wrn.provenance import package_versions

CARD_JSON = "model_card.json"
CARD_MARKDOWN = "MODEL_CARD.md"
REFERENCE_EXAMPLES = 16
# The export itself is in place when its card is written.
CARD_FULL_DISK = ("The export itself was written and verified; only its model card is out of date. Free some "
                  "space, then export again (a new SavedModel version, or a TFLite file with --overwrite).")


def read_card(out):
    path = os.path.join(out, CARD_JSON)
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return json.load(handle)


def display_path(path):
    """`path` relative to the working directory when it lies inside it."""
    relative = os.path.relpath(os.path.abspath(path))
    return path if relative.startswith(os.pardir) else relative


def _identity(source):
    return {"model": source.model_name, "dataset": source.dataset.name, "weights": source.weights}


def source_record(source, class_names):
    """What the exported model is, independent of the export format."""
    from keras_wrn.models import count_macs, count_params, registry

    record = {
        "source": display_path(source.target),
        **_identity(source),
        "params": count_params(source.model),
        "macs": count_macs(source.model),
        "num_classes": source.dataset.num_classes,
        "class_names": [str(name) for name in class_names],
        "input": {"shape": list(source.image_shape), "pixels": "0-255, uint8 or float32"},
        "preprocessing": (
            {"type": "gcn_zca", "note": "GCN (scale 55) + ZCA whitening fitted on the training set"}
            if source.zca is not None
            else {"type": "mean_std", "mean": list(source.mean), "std": list(source.std)}
        ),
    }
    if source.model_name in registry.list_models():
        spec = registry.get_model_spec(source.model_name)
        record["description"] = spec.description
        paper = [r for r in spec.paper if r.dataset == source.dataset.name]
        if paper:
            record["paper_test_error"] = paper[0].error / 100
            record["paper_table"] = paper[0].table
    if source.run_config is not None:
        config = source.run_config
        record["training"] = {key: getattr(config, key) for key in (
            "epochs", "batch_size", "learning_rate", "lr_boundaries", "lr_factor", "weight_decay",
            "momentum", "nesterov", "dropout_rate", "seed", "precision")}
        record["training"]["lr_boundaries"] = list(config.lr_boundaries)
    return record


def check_same_model(out, source):
    """Refuses to add exports of another model to a folder that has a card."""
    card = read_card(out)
    if card is not None and {k: card.get(k) for k in _identity(source)} != _identity(source):
        raise ExportError(
            f"{out} holds exports of {card.get('model')} from {card.get('source')} "
            f"({card.get('weights')} weights); this is {source.model_name} from {source.target} "
            f"({source.weights} weights). Choose another --out."
        )
    return card


def data_dir_option(source):
    """`["--data-dir", DIR]` when the source's data is not where its run says."""
    if source.data_dir and source.data_dir != getattr(source.run_config, "data_dir", None):
        return ["--data-dir", source.data_dir]
    return []


def evaluation_for(out, source):
    """The test evaluation of the source model, as `keras-wrn evaluate`
    reports it (the command is recorded): reused from the card when it has
    one, else measured on the model already loaded."""
    from keras_wrn.training.evaluate import evaluate_model

    card = check_same_model(out, source)
    if card is not None and card.get("evaluation"):
        return card["evaluation"]
    result = evaluate_model(source.model, source.dataset, data_dir=source.data_dir, zca=source.zca)
    argv = ["keras-wrn", "evaluate", display_path(source.target)]
    if source.run_config is not None:
        argv += ["--weights", source.weights]
    else:
        argv += ["--dataset", source.dataset.name]
    argv += data_dir_option(source)
    weights = source.weights if source.run_config is not None else source.target
    return {**_identity(source), "weights": weights, **result, "command": shlex.join(argv)}


def export_command(source, out, *options):
    """The `keras-wrn export` command line that makes an export of `source`."""
    argv = ["keras-wrn", "export", display_path(source.target)]
    if source.run_config is None:
        argv += ["--dataset", source.dataset.name]
    elif source.weights != "final":
        argv += ["--weights", source.weights]
    argv += data_dir_option(source)
    return shlex.join([*argv, *options, "--out", display_path(out)])


def add_artifact(out, source, class_names, evaluation, key, record, command, reference):
    """Adds (or replaces) artifact `key` in the card of `out` and rewrites
    both card files. `reference`: the Keras model's probabilities on the
    first test images; the card keeps them so that the artifacts can be
    checked against the Keras model later, without it."""
    card = check_same_model(out, source) or {}
    keras_reference = card.get("keras_reference") or {
        "note": "Keras model probabilities on the first test images, in test-split order",
        "probabilities": [[float(p) for p in row] for row in reference[:REFERENCE_EXAMPLES]],
    }
    artifacts = card.get("artifacts", {})
    artifacts[key] = {
        **record,
        "command": command,
        "versions": package_versions("ai-edge-litert"),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    card = {
        "name": os.path.basename(out.rstrip(os.sep)),
        **source_record(source, class_names),
        "evaluation": evaluation,
        "artifacts": dict(sorted(artifacts.items())),
        "keras_reference": keras_reference,
    }
    files.write_json(os.path.join(out, CARD_JSON), card, full_disk=CARD_FULL_DISK)
    files.write_text(os.path.join(out, CARD_MARKDOWN), render_markdown(card), full_disk=CARD_FULL_DISK)
    return card


def render_markdown(card):
    """The short human-readable card."""
    evaluation = card["evaluation"]
    lines = [
        f"# {card['name']}",
        "",
        f"**{card['model']}**" + (f": {card['description']}" if card.get("description") else ""),
        "",
        f"- Parameters: {card['params']:,} (trainable); {card['macs'] / 1e6:,.1f} M multiply-adds per image",
        f"- Dataset: {card['dataset']} ({card['num_classes']} classes), input "
        f"{'x'.join(map(str, card['input']['shape']))} pixels 0-255; preprocessing inside the model "
        f"({card['preprocessing']['type']})",
        f"- Test error (`{evaluation['command']}`): {100 * evaluation['test_error']:.2f}% on "
        f"{evaluation['num_examples']:,} test images"
        + (f"; the paper reports {100 * card['paper_test_error']:.2f}% ({card['paper_table']})"
           if card.get("paper_test_error") is not None else ""),
    ]
    if card.get("training"):
        training = card["training"]
        lines.append(
            f"- Trained {training['epochs']} epochs, batch {training['batch_size']}, SGD lr "
            f"{training['learning_rate']:g} (x{training['lr_factor']:g} at epochs "
            f"{', '.join(map(str, training['lr_boundaries']))}), weight decay {training['weight_decay']:g}"
        )
    lines += [
        "",
        "| artifact | format | test error | max abs diff vs Keras | top-1 agreement | command |",
        "|---|---|---|---|---|---|",
    ]
    for key, artifact in card["artifacts"].items():
        parity = next(iter(artifact["parity"].values()))
        worst = max(p["max_abs_diff"] for p in artifact["parity"].values())
        agreement = min(p["top1_agreement"] for p in artifact["parity"].values())
        kind = artifact["format"] + (f" ({artifact['quantize']})" if artifact.get("quantize") else "")
        lines.append(
            f"| `{key}` | {kind} | {100 * artifact['test_error']:.2f}% ({parity['num_examples']:,} images) "
            f"| {worst:.2g} | {100 * agreement:.2f}% | `{artifact['command']}` |"
        )
    versions = next(iter(card["artifacts"].values()))["versions"]
    lines += ["", "Made with " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".", ""]
    return "\n".join(lines)
