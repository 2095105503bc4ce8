"""Where a training step's time goes, kernel by kernel: keras-wrn's trainer
step (TensorFlow graph, oneDNN kernels, no XLA) and the paper's official
PyTorch code, each in its own worker process run with oneDNN's execution
trace (`ONEDNN_VERBOSE=profile_exec`) and one inter-op thread, so that kernel
times do not overlap. Both frameworks call the same oneDNN library; this
shows which kernels differ between them and how far the rest of the step
(everything outside oneDNN) could move the ratio.

    python benchmarks/onednn_kernels.py --model wrn-16-4 --batch-size 64

The trace slows both sides (a line per kernel), so the speed ratio is
timed without it first, interleaved as in `keras-wrn benchmark`; the traced
steps give the split."""

import collections
import datetime
import re

from keras_wrn.benchmark import timing
from keras_wrn.benchmark.peak import describe_machine, machine
from keras_wrn.errors import InvalidArgumentError
from keras_wrn.provenance import package_versions

# A precision's name: (keras-wrn's --precision, PyTorch's autocast dtype).
PRECISIONS = {"float32": ("float32", None), "bfloat16": ("mixed_bfloat16", "bfloat16")}
TRACE = {"ONEDNN_VERBOSE": "profile_exec"}


def parse_trace(lines):
    """{(primitive, propagation, problem): milliseconds} summed over the
    `exec` lines of a oneDNN verbose trace (oneDNN 3.x: `onednn_verbose,
    v1,primitive,exec,cpu,KIND,IMPL,PROP,MEMORY,ATTRS,AUX,PROBLEM,MS`)."""
    times = collections.Counter()
    for line in lines:
        fields = line.split(",")
        if not line.startswith("onednn_verbose") or "exec" not in fields[:5]:
            continue
        at = fields.index("exec")
        try:
            milliseconds = float(fields[-1])
        except ValueError:
            continue
        times[fields[at + 2], fields[at + 4], _same_problem(fields[-2])] += milliseconds
    return times


def _same_problem(problem):
    """The convolution problem with explicit padding folded in: keras-wrn
    pads its stride-2 convolutions in a layer of their own (PyTorch's
    symmetric padding), so oneDNN sees `ih34...ph0` where PyTorch passes
    `ih32...ph1`. A WRN has no unpadded convolution wider than 1x1, so
    every `ph0` with a kernel over 1 is such a case."""
    match = re.fullmatch(r"(.*)ih(\d+)(oh\d+)kh(\d+)(sh\d+dh0)ph0_iw(\d+)(ow\d+)kw(\d+)(sw\d+dw0)pw0(.*)", problem)
    if not match or int(match[4]) == 1:
        return problem
    head, ih, oh, kh, sh, iw, ow, kw, sw, tail = match.groups()
    pad_h, pad_w = (int(kh) - 1) // 2, (int(kw) - 1) // 2
    return (f"{head}ih{int(ih) - 2 * pad_h}{oh}kh{kh}{sh}ph{pad_h}_"
            f"iw{int(iw) - 2 * pad_w}{ow}kw{kw}{sw}pw{pad_w}{tail}")


def _traced_step(case, steps):
    """(milliseconds per step, {kernel: milliseconds per step})."""
    case.warmup(3)
    calls = max(1, steps)
    total = collections.Counter()
    wall = 0.0
    for _ in range(calls):
        _, seconds = case.window(0.0)  # a window of at least 0 s: one step
        wall += seconds
        total += parse_trace(case.printed)
    return 1000 * wall / calls, {kernel: ms / calls for kernel, ms in total.items()}


def _cases(spec, model_name, batch_size, precision, threads, env):
    keras_precision, autocast = PRECISIONS[precision]
    return {
        "keras-wrn": lambda: timing.WorkerCase(
            env={"KERAS_BACKEND": "tensorflow", **env}, kind="keras_train", model=model_name,
            batch_size=batch_size, inter_op_threads=1, options={"xla": False, "precision": keras_precision}),
        "pytorch": lambda: timing.WorkerCase(
            env=env, kind="train", depth=spec.kwargs["depth"], k=spec.kwargs["k"], num_classes=10,
            batch_size=batch_size, threads=threads, options={"autocast": autocast} if autocast else {}),
    }


def kernel_breakdown(model_name, batch_size, *, precisions=tuple(PRECISIONS), steps=3, windows=3,
                     min_seconds=2.0, threads=None, log=print):
    """{precision: {"keras-wrn": side, "pytorch": side, "speedup", "bound"}}.
    A side holds its traced step time, its oneDNN time and its kernels.
    `speedup` is keras-wrn's images/s over PyTorch's, untraced and
    interleaved (`windows` windows of `min_seconds`); `bound` is what it
    would be if nothing outside oneDNN took time in keras-wrn's step and
    every convolution ran the faster of the two sides' kernels for its
    problem: the most that work on keras-wrn's side of oneDNN could give."""
    import os

    from keras_wrn.models import registry

    spec = registry.get_model_spec(model_name)
    if spec.family != "cifar":
        raise InvalidArgumentError(f"The kernel breakdown compares the CIFAR models with the official CIFAR "
                                   f"code; {model_name} is an ImageNet model.")
    unknown = [name for name in precisions if name not in PRECISIONS]
    if unknown:
        raise InvalidArgumentError(f"Unknown precisions {unknown}; choose from {', '.join(PRECISIONS)}.")
    threads = threads or os.cpu_count()
    result = {"sweep": "onednn-kernels", "model": model_name, "batch_size": batch_size, "threads": threads,
              "steps": steps, "machine": machine(), "versions": package_versions(),
              "date": datetime.date.today().isoformat(), "precisions": {}}
    for name in precisions:
        log(f"timing keras-wrn and PyTorch, {name}, untraced and interleaved...")
        rates = timing.interleaved({side: start() for side, start in
                                    _cases(spec, model_name, batch_size, name, threads, {}).items()},
                                   windows=windows, min_seconds=min_seconds)
        speedup = rates["keras-wrn"]["images_per_second"] / rates["pytorch"]["images_per_second"]
        sides = {}
        for side, start in _cases(spec, model_name, batch_size, name, threads, TRACE).items():
            log(f"tracing {side}, {name}...")
            case = start()
            try:
                step, kernels = _traced_step(case, steps)
            finally:
                case.close()
            sides[side] = {"images_per_second": rates[side]["images_per_second"], "step_ms": step,
                           "onednn_ms": sum(kernels.values()),
                           "kernels": [[*kernel, ms] for kernel, ms in sorted(kernels.items())]}
        best = _best_onednn_ms(sides)
        result["precisions"][name] = {**sides, "speedup": speedup,
                                      "bound": speedup * sides["keras-wrn"]["step_ms"] / best}
    return result


def _kernels(side):
    return {tuple(row[:3]): row[3] for row in side["kernels"]}


def _best_onednn_ms(sides):
    ours, theirs = _kernels(sides["keras-wrn"]), _kernels(sides["pytorch"])
    return sum(min(ms, theirs.get(kernel, ms)) if kernel[0] == "convolution" else ms
               for kernel, ms in ours.items())


GROUPS = (("convolution", "forward_training"), ("convolution", "backward_data"),
          ("convolution", "backward_weights"), ("batch_normalization", None), ("reorder", None))


def _grouped(side):
    groups = collections.Counter()
    for (primitive, propagation, _), ms in _kernels(side).items():
        key = next((f"{p} {q}" if q else p for p, q in GROUPS if p == primitive and q in (None, propagation)),
                   "other oneDNN")
        groups[key] += ms
    groups["outside oneDNN"] = side["step_ms"] - side["onednn_ms"]
    return groups


def format_breakdown(result):
    """The breakdown as text: per precision, milliseconds per step by kernel
    group on each side, the convolution problems that differ most, and the
    bound on the speed ratio."""
    lines = [f"{result['model']}, batch {result['batch_size']}, training step under oneDNN's trace, "
             f"{result['threads']} threads, on {describe_machine(result['machine'])}"]
    for name, entry in result["precisions"].items():
        ours, theirs = _grouped(entry["keras-wrn"]), _grouped(entry["pytorch"])
        lines.append(f"  {name}: ms per step          keras-wrn    PyTorch")
        for group in [*(f"{p} {q}" if q else p for p, q in GROUPS), "other oneDNN", "outside oneDNN"]:
            lines.append(f"    {group:32s} {ours.get(group, 0):8.1f}   {theirs.get(group, 0):8.1f}")
        lines.append(f"    {'step':32s} {entry['keras-wrn']['step_ms']:8.1f}   {entry['pytorch']['step_ms']:8.1f}")
        a, b = _kernels(entry["keras-wrn"]), _kernels(entry["pytorch"])
        gaps = sorted(((a[k] - b[k], k) for k in a.keys() & b.keys() if k[0] == "convolution"), reverse=True)
        for gap, kernel in gaps[:3]:
            if abs(gap) >= 1.0:
                lines.append(f"    slower in keras-wrn by {gap:5.1f} ms: {kernel[1]} {kernel[2]} "
                             f"({a[kernel]:.1f} against {b[kernel]:.1f})")
        lines.append(f"    keras-wrn / PyTorch images/s, untraced: {entry['speedup']:.2f}x; at most "
                     f"{entry['bound']:.2f}x with nothing outside oneDNN and the faster convolution kernel "
                     f"of the two for every problem")
    return lines


def kernels_table(results, label):
    """The README's table: a row per (breakdown, precision). `label(result)`
    names the CPU of a result."""
    rows = ["| CPU | model, batch | precision | keras-wrn / PyTorch img/s | keras-wrn's step in oneDNN | at most "
            "| weight gradients, ms per step (keras-wrn / PyTorch) | PyTorch's layout reorders, ms per step |",
            "|---|---|---|---|---|---|---|---|"]
    for result in sorted(results, key=lambda r: (label(r), r["model"], r["batch_size"])):
        for name, entry in result["precisions"].items():
            ours, theirs = _grouped(entry["keras-wrn"]), _grouped(entry["pytorch"])
            rows.append(
                f"| {label(result)} | {result['model']}, {result['batch_size']} | {name} | {entry['speedup']:.2f}x "
                f"| {100 * entry['keras-wrn']['onednn_ms'] / entry['keras-wrn']['step_ms']:.0f}% "
                f"| {entry['bound']:.2f}x | {ours['convolution backward_weights']:.0f} / "
                f"{theirs['convolution backward_weights']:.0f} | {theirs['reorder']:.0f} |")
    versions = ", ".join(f"{k} {v}" for k, v in results[0]["versions"].items())
    rows += ["", f"{results[0]['threads']} threads; {versions}; {results[0]['date']}."]
    return "\n".join(rows)
