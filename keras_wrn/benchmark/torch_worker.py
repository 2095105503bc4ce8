"""The torch reference's timing process: reads JSON commands (setup,
warmup, window) from stdin, one per line, and answers each on stdout."""

import json
import sys

from keras_wrn.benchmark import torch_reference
from keras_wrn.benchmark.timing import timed_window


def main():
    function = images = None
    for line in sys.stdin:
        message = json.loads(line)
        try:
            if message["command"] == "setup":
                builder = {"train": torch_reference.training_step, "infer": torch_reference.inference_step}
                function = builder[message["kind"]](message["depth"], message["k"], message["num_classes"],
                                                    message["batch_size"], threads=message.get("threads"))
                images = message["batch_size"]
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
