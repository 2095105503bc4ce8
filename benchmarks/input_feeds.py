"""Images/s of the Keras fit route fed by tf.data (`StreamedBatches`) against
in-memory arrays (`ShuffledBatches`), the same compiled model, epochs
interleaved (memory, stream, memory, ...), the median of each.

    KERAS_BACKEND=jax python benchmarks/input_feeds.py [--model wrn-16-4] [--batch 64] [--rounds 5]

The split is tensorflow-datasets' mock CIFAR-10 (random pixels, made in
memory: no download), read through the same pipeline as a prepared one
(`data.load_split`, `pipeline.batches`: cached, shuffled, batched,
prefetched); the in-memory feed holds the same images. Writes
benchmarks/results/feeds-MODEL-bBATCH-BACKEND.json.
"""

import argparse
import json
import os
import statistics
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure(model, batch, steps, rounds):
    import keras
    import numpy as np
    import tensorflow_datasets as tfds

    from keras_wrn import data
    from keras_wrn.data.feeds import ShuffledBatches, StreamedBatches, input_tensorflow
    from keras_wrn.training.config import TrainConfig
    from keras_wrn.training.fit import build_fit_model

    input_tensorflow()
    spec = data.get_dataset_spec("cifar10")
    config = TrainConfig.from_preset("cifar10", model=model, batch_size=batch)
    with tfds.testing.mock_data(num_examples=batch * steps):
        split = data.load_split(spec, "train", data_dir=os.path.join(ROOT, "no-such-folder"), training=True)
        images, labels = (np.concatenate(part) for part in zip(*split.source.batch(1024).as_numpy_iterator()))
        feeds = {"in-memory arrays": ShuffledBatches(images, labels, batch),
                 "tf.data stream": StreamedBatches(split, batch, steps)}
        trainer, _ = build_fit_model(config, spec, steps_per_epoch=steps)
        for feed in feeds.values():  # compile, and fill the stream's cache
            trainer.fit(feed, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)
        rates = {name: [] for name in feeds}
        for epoch in range(rounds):
            for name, feed in feeds.items():
                feed.set_epoch(epoch + 1)
                started = time.perf_counter()
                trainer.fit(feed, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)
                rates[name].append(batch * steps / (time.perf_counter() - started))
    return {"backend": keras.backend.backend(), "rates": rates,
            "median": {name: statistics.median(values) for name, values in rates.items()}}


def main():
    from keras_wrn import framework_logs
    from keras_wrn.provenance import cpu

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="wrn-16-4")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=16, help="steps per timed epoch")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    framework_logs.quiet()
    result = measure(args.model, args.batch, args.steps, args.rounds)
    memory, stream = result["median"]["in-memory arrays"], result["median"]["tf.data stream"]
    record = {"model": args.model, "batch": args.batch, "steps": args.steps, "rounds": args.rounds,
              "cpu": cpu().describe(), **result, "stream_over_memory": stream / memory}
    path = os.path.join(ROOT, "benchmarks", "results", f"feeds-{args.model}-b{args.batch}-{result['backend']}.json")
    with open(path, "w") as handle:
        json.dump(record, handle, indent=1)
    print(f"{args.model}, batch {args.batch}, Keras fit on {result['backend']}, {record['cpu']}:")
    print(f"  in-memory arrays {memory:.0f} img/s, tf.data stream {stream:.0f} img/s "
          f"({stream / memory:.2f}x), medians of {args.rounds} interleaved epochs of {args.steps} steps -> {path}")


if __name__ == "__main__":
    main()
