"""Where the training step's time goes, per oneDNN kernel, in keras-wrn and in
the paper's official PyTorch code (see keras_wrn/benchmark/onednn.py); writes
benchmarks/results/onednn-<model>-b<batch>-<cpu>.json.

    python benchmarks/onednn_kernels.py --model wrn-16-4 --batch-size 64
    python benchmarks/onednn_kernels.py --model wrn-28-10 --batch-size 32 --steps 2
"""

import argparse
import json
import os

from keras_wrn import framework_logs
from keras_wrn.benchmark.onednn import PRECISIONS, format_breakdown, kernel_breakdown
from keras_wrn.errors import KerasWRNError
from keras_wrn.provenance import cpu

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="wrn-16-4")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3, help="traced steps per side (after 3 untraced)")
    parser.add_argument("--precisions", default=",".join(PRECISIONS))
    args = parser.parse_args()
    if not framework_logs.verbose_requested():  # KERAS_WRN_VERBOSE=1 shows the frameworks' logs
        framework_logs.quiet()
    try:
        result = kernel_breakdown(args.model, args.batch_size, steps=args.steps,
                                  precisions=[name for name in args.precisions.split(",") if name])
    except KerasWRNError as error:  # an unknown model or precision, a worker that failed: one line
        raise SystemExit(f"Error: {error}") from None
    print("\n".join(format_breakdown(result)))
    path = os.path.join(RESULTS, f"onednn-{args.model}-b{args.batch_size}-{cpu().tag}.json")
    with open(path, "w") as stream:
        json.dump(result, stream, indent=1)
    print(f"wrote {os.path.relpath(path)}")


if __name__ == "__main__":
    main()
