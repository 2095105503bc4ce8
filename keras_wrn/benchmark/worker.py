"""A benchmark case's own process: reads JSON commands (setup, warmup,
window) from stdin, one per line, and answers each on stdout.

It times the torch reference (torch's libraries crash when loaded beside
TensorFlow) and keras-wrn under settings that must be fixed before the
framework starts: the Keras backend, TensorFlow's thread pools, oneDNN, the
image data format (`keras_wrn.benchmark.settings`)."""

import json
import sys

from keras_wrn.benchmark.timing import timed_window


def build(message):
    """(callable, images per call) for a setup message."""
    kind, batch_size = message["kind"], message["batch_size"]
    if kind in ("train", "infer"):  # the official PyTorch code
        from keras_wrn.benchmark import torch_reference

        builder = {"train": torch_reference.training_step, "infer": torch_reference.inference_step}[kind]
        return builder(message["depth"], message["k"], message["num_classes"], batch_size,
                       threads=message.get("threads"), **message.get("options", {})), batch_size
    from keras_wrn.benchmark import keras_cases

    builders = {"keras_train": keras_cases.training_step, "keras_infer": keras_cases.inference_step,
                "keras_fit": keras_cases.fit_step, "keras_model": keras_cases.model_step}
    if kind not in builders:
        raise KeyError(f"unknown case kind {kind!r}")
    keras_cases.configure_threads(message.get("inter_op_threads"))
    return builders[kind](message["model"], batch_size, **message.get("options", {})), batch_size


def main():
    function = images = None
    for line in sys.stdin:
        message = json.loads(line)
        try:
            if message["command"] == "setup":
                function, images = build(message)
                reply = {"ok": True}
            elif message["command"] == "warmup":
                for _ in range(message["calls"]):
                    function()
                reply = {"ok": True}
            else:
                rate, seconds = timed_window(function, images, message["min_seconds"])
                reply = {"rate": rate, "seconds": seconds}
        except Exception as error:  # reported to the parent, which raises
            reply = {"error": f"{type(error).__name__}: {error}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
