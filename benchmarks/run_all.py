"""Regenerates the benchmark tables of docs/benchmarks.md: runs the matrix below (each
configuration in its own process, so that XLA and thread settings do not
leak), writes one JSON per run into benchmarks/results/, and rewrites the
tables between that page's benchmark markers.

    python benchmarks/run_all.py              # the full matrix (about an hour on 2 cores)
    python benchmarks/run_all.py --only wrn-16-4
    python benchmarks/run_all.py --table-only # rebuild the table from results/

Then the settings sweeps (`keras-wrn benchmark --settings all`): the trainer's
step under each candidate setting, each in its own process, interleaved.

Then the oneDNN kernel breakdowns (`benchmarks/onednn_kernels.py`): where
the training step's time goes in keras-wrn and in the PyTorch reference.

GPU rows come from the GPU kit's `speed` job (`benchmarks/gpu/speed.py`,
run on a lent GPU: docs/benchmarks.md): its `gpu-speed-*.json` files go into
benchmarks/results/.
"""

import argparse
import glob
import json
import os
import subprocess
import sys

from keras_wrn.benchmark.onednn import kernels_table
from keras_wrn.benchmark.peak import describe_machine
from keras_wrn.benchmark.results import read_result
from keras_wrn.provenance import cpu

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
PAGE = os.path.join(ROOT, "docs", "benchmarks.md")
START, END = "<!-- benchmarks:start -->", "<!-- benchmarks:end -->"

# (model, batch, parts, xla): the targets (WRN-16-4 and WRN-28-10 at
# batch 64 and 128), with and without XLA; deployment formats once per model.
MATRIX = [
    ("wrn-16-4", 64, "train,infer,latency,savedmodel,tflite", False),
    ("wrn-16-4", 64, "train,infer", True),
    ("wrn-16-4", 128, "train,infer", False),
    ("wrn-16-4", 128, "train,infer", True),
    ("wrn-28-10", 64, "train,infer", False),
    ("wrn-28-10", 64, "train,infer", True),
    ("wrn-28-10", 128, "train,infer", True),
]

# (model, batch, settings) of the settings sweeps. Every case holds its own
# process and model: a WRN-28-10 training step at batch 64 peaks at 2.9 GB (RSS), so its
# sweep times the settings that matter there within 24 GB.
SWEEPS = [("wrn-16-4", 64, "all"), ("wrn-28-10", 64, "default,no-xla,input-pipeline,reference"),
          # precision at equal work on a CPU with bfloat16 instructions (batch 32 keeps it within minutes)
          ("wrn-28-10", 32, "no-xla,no-xla-mixed-bfloat16,reference,reference-bfloat16")]

# (model, batch, traced steps) of the oneDNN kernel breakdowns.
KERNELS = [("wrn-16-4", 64, 3), ("wrn-28-10", 32, 2)]


def run(model, batch, parts, xla, windows, min_seconds):
    name = f"{model}-b{batch}-{'xla' if xla else 'noxla'}-{cpu().tag}.json"
    path = os.path.join(RESULTS, name)
    command = [sys.executable, "-m", "keras_wrn.cli", "benchmark", "--model", model, "--batch-size", str(batch),
               "--parts", parts, "--xla" if xla else "--no-xla", "--windows", str(windows),
               "--min-seconds", str(min_seconds), "--json-out", path]
    print(" ".join(command), flush=True)
    subprocess.run(command, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    return path


def run_sweep(model, batch, settings, windows, min_seconds):
    path = os.path.join(RESULTS, f"settings-{model}-b{batch}-{cpu().tag}.json")
    command = [sys.executable, "-m", "keras_wrn.cli", "benchmark", "--model", model, "--batch-size", str(batch),
               "--settings", settings, "--windows", str(windows), "--min-seconds", str(min_seconds),
               "--json-out", path]
    print(" ".join(command), flush=True)
    subprocess.run(command, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    return path


def run_kernels(model, batch, steps):
    command = [sys.executable, os.path.join(ROOT, "benchmarks", "onednn_kernels.py"), "--model", model,
               "--batch-size", str(batch), "--steps", str(steps)]
    print(" ".join(command), flush=True)
    subprocess.run(command, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def settings_table(sweeps):
    sweeps = [read_result(result) for result in sweeps]  # every file in the one schema
    sweeps = sorted(sweeps, key=lambda r: (r["model"], r["batch_size"]))
    names = list(dict.fromkeys(name for r in sweeps for name in r["cases"]))
    rows = ["| setting | " + " | ".join(f"{r['model']} b{r['batch_size']} on {cpu_label(r)}: img/s "
                                         f"(x default, % of peak)" for r in sweeps) + " |",
            "|---|" + "---|" * len(sweeps)]
    for name in names:
        cells = []
        for r in sweeps:
            case = r["cases"].get(name)
            ratio = f"x{case['ratio_to_default']:.2f}, " if case and "ratio_to_default" in case else ""
            cells.append("-" if case is None else
                         f"{case['images_per_second']:.2f} ({ratio}{100 * case['fraction_of_peak']:.0f}%)")
        description = next(r["cases"][name]["description"] for r in sweeps if name in r["cases"])
        rows.append(f"| `{name}`: {description} | " + " | ".join(cells) + " |")
    versions = ", ".join(f"{k} {v}" for k, v in sweeps[0]["versions"].items())
    rows += ["", f"{sweeps[0]['threads']} threads, matmul peak "
                 f"{min(r['peak']['gflops'] for r in sweeps):.0f} GFLOP/s; {versions}; {sweeps[0]['date']}."]
    return "\n".join(rows)


def cpu_label(result):
    """The CPU a row was measured on, short: "AMD EPYC (Zen 4; AVX2 AVX-512 ...)"."""
    return describe_machine(result["machine"]).rsplit(",", 1)[0]


def table(results):
    results = [read_result(result) for result in results]  # every file in the one schema
    rows = ["| CPU | model | batch | XLA | keras-wrn train img/s | torch train img/s | train ratio | train % of peak "
            "| keras-wrn infer img/s | torch infer img/s | infer % of peak | batch-1 ms (keras / torch) "
            "| TFLite batch-1 ms (fp32 / fp16 / dyn / int8) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]

    def cell(result, case, key="images_per_second", scale=1.0, digits=1):
        value = result["cases"].get(case, {}).get(key)
        return f"{scale * value:.{digits}f}" if value is not None else "-"

    for r in sorted(results, key=lambda r: (cpu_label(r), r["model"], r["batch_size"], r["settings"]["xla"])):
        ratio = r["ratios"].get("train")
        tflite = " / ".join(cell(r, f"tflite_{q}_latency", "seconds_per_call", 1000, 2)
                            for q in ("none", "float16", "dynamic", "int8"))
        rows.append(
            f"| {cpu_label(r)} | {r['model']} | {r['batch_size']} | {'on' if r['settings']['xla'] else 'off'} "
            f"| {cell(r, 'keras_train', digits=2)} | {cell(r, 'torch_train', digits=2)} "
            f"| {f'{ratio:.2f}' if ratio else '-'} | {cell(r, 'keras_train', 'fraction_of_peak', 100, 0)}% "
            f"| {cell(r, 'keras_infer')} | {cell(r, 'torch_infer')} | {cell(r, 'keras_infer', 'fraction_of_peak', 100, 0)}% "
            f"| {cell(r, 'keras_latency', 'seconds_per_call', 1000)} / {cell(r, 'torch_latency', 'seconds_per_call', 1000)} "
            f"| {tflite if 'tflite_none_latency' in r['cases'] else '-'} |")
    first = results[0]
    versions = ", ".join(f"{k} {v}" for k, v in first["versions"].items())
    rows += ["", f"{first['machine']['cores']} cores; measured matmul peak "
                 f"{min(r['peak']['gflops'] for r in results):.0f}-{max(r['peak']['gflops'] for r in results):.0f} "
                 f"GFLOP/s (float32). {versions}. Medians of interleaved windows; {first['date']}."]
    return "\n".join(rows)


def gpu_table(results):
    """GPU rows: keras-wrn's training route (JAX, bf16, XLA) and, where the
    speed job measured them, the official PyTorch code eager and compiled
    (channels_last, bf16 autocast) and the forward passes, with the bf16
    matrix-product peak of the same run."""
    results = [read_result(result) for result in results]  # every file in the one schema
    rows = ["| model | batch | device | keras-wrn train img/s (min-max) | TFLOP/s, % of the bf16 matmul peak "
            "| PyTorch eager / compiled train img/s | keras-wrn / fastest PyTorch | infer img/s: keras-wrn / "
            "PyTorch eager / compiled |",
            "|---|---|---|---|---|---|---|---|"]

    def rate(r, case):
        value = r.get("cases", {}).get(case, {}).get("images_per_second")
        return f"{value:.0f}" if value is not None else "-"

    for r in sorted(results, key=lambda r: (r["date"], r["model"], r["batch_size"])):
        train = r["cases"].get("keras_train")
        keras = (f"{train['images_per_second']:.0f} ({train['images_per_second_min']:.0f}-"
                 f"{train['images_per_second_max']:.0f})" if train else "-")
        achieved = (f"{train['gflops'] / 1000:.0f} of {r['peak']['gflops'] / 1000:.0f}, "
                    f"{100 * train['fraction_of_peak']:.0f}%" if train else "-")
        ratio = r["ratios"].get("train_over_fastest_torch")
        rows.append(
            f"| {r['model']} | {r['batch_size']} | {r['device']} | {keras} | {achieved} "
            f"| {rate(r, 'torch_eager_train')} / {rate(r, 'torch_compiled_train')} "
            f"| {f'{ratio:.2f}x' if ratio else '-'} "
            f"| {rate(r, 'keras_infer')} / {rate(r, 'torch_eager_infer')} / {rate(r, 'torch_compiled_infer')} |")
    notes = []
    for r in sorted(results, key=lambda r: r["date"]):
        note = f"{r['date']}, {r['device']}: " + ", ".join(f"{k} {v}" for k, v in r["versions"].items()) + "."
        if note not in notes:
            notes.append(note)
    return "\n".join(rows + [""] + notes)


def feeds_table(results):
    """`benchmarks/input_feeds.py`'s results: the fit route fed by tf.data against host memory."""
    rows = ["| CPU | backend | model | batch | in-memory img/s | tf.data img/s | tf.data / memory |",
            "|---|---|---|---|---|---|---|"]
    for r in sorted(results, key=lambda r: (r["model"], r["batch"], r["backend"])):
        cells = []
        for name in ("in-memory arrays", "tf.data stream"):
            values = r["rates"][name]
            cells.append(f"{r['median'][name]:.1f} ({min(values):.1f}-{max(values):.1f})")
        rows.append(f"| {r['cpu']} | {r['backend']} | {r['model']} | {r['batch']} | {cells[0]} | {cells[1]} "
                    f"| {r['stream_over_memory']:.2f} |")
    return "\n".join(rows)


def rewrite_page(text):
    with open(PAGE) as handle:
        readme = handle.read()
    if START not in readme or END not in readme:
        raise SystemExit(f"{PAGE} lacks the {START} ... {END} markers")
    before, rest = readme.split(START, 1)
    _, after = rest.split(END, 1)
    with open(PAGE, "w") as handle:
        handle.write(f"{before}{START}\n{text}\n{END}{after}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="Run only this model's rows.")
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--min-seconds", type=float, default=2.0)
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--no-sweeps", action="store_true",
                        help="Skip the settings sweeps and the kernel breakdowns.")
    args = parser.parse_args()
    os.makedirs(RESULTS, exist_ok=True)
    if not args.table_only:
        for model, batch, parts, xla in MATRIX:
            if args.only in (None, model):
                run(model, batch, parts, xla, args.windows, args.min_seconds)
        for model, batch, settings in [] if args.no_sweeps else SWEEPS:
            if args.only in (None, model):
                run_sweep(model, batch, settings, args.windows, args.min_seconds)
        for model, batch, steps in [] if args.no_sweeps else KERNELS:
            if args.only in (None, model):
                run_kernels(model, batch, steps)
    results, gpu_results, sweeps, kernels, feeds = [], [], [], [], []
    for path in sorted(glob.glob(os.path.join(RESULTS, "*.json"))):
        name = os.path.basename(path)
        with open(path) as handle:
            loaded = json.load(handle)
        (gpu_results if name.startswith("gpu-") else sweeps if name.startswith("settings-")
         else kernels if name.startswith("onednn-") else feeds if name.startswith("feeds-")
         else results).append(loaded)
    if results:
        text = table(results)
        if sweeps:
            text += ("\n\nSettings sweeps (`keras-wrn benchmark --settings all`; training, each setting in its "
                     "own process, interleaved):\n\n" + settings_table(sweeps))
        if kernels:
            text += ("\n\nWhere the training step's time goes (`benchmarks/onednn_kernels.py`; images/s untraced "
                     "and interleaved, then each step traced kernel by kernel by oneDNN):\n\n"
                     + kernels_table(kernels, cpu_label))
        if gpu_results:
            text += "\n\nGPU (the GPU kit's `speed` job, `benchmarks/gpu/speed.py`):\n\n" + gpu_table(gpu_results)
        if feeds:
            text += ("\n\nThe Keras fit route fed by tf.data against host memory (`benchmarks/input_feeds.py`; "
                     "medians of interleaved epochs, min-max in brackets):\n\n" + feeds_table(feeds))
        rewrite_page(text)
        count = len(results) + len(gpu_results) + len(sweeps) + len(kernels) + len(feeds)
        print(f"docs/benchmarks.md tables rewritten from {count} results.")


if __name__ == "__main__":
    main()
