"""The GPU kit, here: pack what the jobs need, say how long they take, and
put the weights job's parts back together.

    python benchmarks/gpu/pack.py pack      # wheels + data into .gpu-kit/, its size, the `run` calls
    python benchmarks/gpu/pack.py plan      # each job's estimated time on an H100, from measured rates
    python benchmarks/gpu/pack.py join DIR...  # the weights job's parts -> one checked .npz

`pack` downloads the wheels the GPU machine lacks (Keras and the two of its
dependencies the machine has not, for CPython 3.12 on manylinux, as the
device tool's README says), copies the CIFAR-10 JPEG archive and the 1,017
exact-pixel test images from `../shared/data/`, and writes them into the
git-ignored `.gpu-kit/`, which each call names in `carry`. It prints what
travels (the repository and the kit, under the 64 MiB a call takes) and the
exact `run` call of each job.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kit  # noqa: E402

# What the machine lacks of what keras-wrn's JAX route imports: Keras, and of
# Keras' dependencies namex and optree (it has the others: KINDS.md).
MISSING = ("keras", "namex", "optree")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")
DATA_FILES = ("cifar10-jpeg.tar.gz", "cifar10-test-exact-1017.npz")
SHARED_DATA = os.path.join(os.path.dirname(kit.ROOT), "shared", "data")

# Measured on an NVIDIA H100 80GB under JAX, mixed bfloat16 (docs/benchmarks.md, exported/cifar10-wrn-16-8):
# training images/s alone on the GPU, and the compile of a step.
H100_TRAIN_IMAGES_PER_SECOND = {"wrn-28-10": 10_071, "wrn-16-8": 32_000}
H100_COMPILE_SECONDS = {"wrn-28-10": 25, "wrn-16-8": 15}
CIFAR10_TRAIN = 50_000

# Each job: its command, its budget (seconds, what the job checks itself) and the call's timeout.
JOBS = {
    "speed": ("python3 benchmarks/gpu/speed.py --budget 170 --out $OUT/speed", 170),
    "control": ("python3 benchmarks/gpu/control.py --budget 290 --out $OUT/control", 290),
    "weights": ("python3 benchmarks/gpu/weights.py --budget 480 --out $OUT", 480),
}


def installed_version(name):
    from importlib.metadata import version

    return version(name)


def download_wheels(folder):
    """The MISSING wheels, at the versions installed here, for the device's Python."""
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        os.remove(os.path.join(folder, name))
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--python-version", "3.12", "--implementation", "cp",
               *(argument for platform in PLATFORMS for argument in ("--platform", platform)), "-d", folder,
               *(f"{name}=={installed_version(name)}" for name in MISSING)]
    subprocess.run(command, check=True)
    return sorted(os.listdir(folder))


def folder_bytes(folder):
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(folder) for name in names)


def repository_bytes():
    """What a call sends of the repository: tracked files and untracked ones git does not ignore."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=kit.ROOT,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    return sum(os.path.getsize(os.path.join(kit.ROOT, name)) for name in listed
               if name and os.path.isfile(os.path.join(kit.ROOT, name)))


def run_calls():
    """The `run` call of each job, as the device tool takes it."""
    calls = {}
    for name, (command, budget) in JOBS.items():
        calls[name] = {"command": command, "carry": [".gpu-kit"], "timeout_s": int(budget) + 90}
    calls["speed+control"] = {"command": f"{JOBS['speed'][0]}; {JOBS['control'][0]}", "carry": [".gpu-kit"],
                              "timeout_s": int(JOBS["speed"][1] + JOBS["control"][1]) + 90}
    calls["weights (second call)"] = {"command": "the `second_call` of the record.json the first call brought "
                                                 "back (cp .gpu-out/weights/PART ... $OUT/), no carry",
                                      "timeout_s": 60}
    return calls


def pack(kit_folder, shared):
    wheels = download_wheels(os.path.join(kit_folder, kit.WHEELS))
    print(f"wheels: {', '.join(wheels)}")
    data = os.path.join(kit_folder, kit.DATA)
    os.makedirs(data, exist_ok=True)
    for name in DATA_FILES:
        source = os.path.join(shared, name)
        if os.path.exists(source):
            shutil.copy(source, os.path.join(data, name))
        elif not os.path.exists(os.path.join(data, name)):
            print(f"missing: {source} (the control and weights jobs need it)")
    kit_bytes, repo_bytes = folder_bytes(kit_folder), repository_bytes()
    total = kit_bytes + repo_bytes
    print(f"travels: {total / kit.MIB:.1f} MiB (repository {repo_bytes / kit.MIB:.1f} MiB + {kit_folder} "
          f"{kit_bytes / kit.MIB:.1f} MiB) of the {kit.QUOTAS.carry_bytes / kit.MIB:.0f} MiB a call takes")
    if total > kit.QUOTAS.carry_bytes:
        raise SystemExit("too large to travel: leave something out of the kit or the repository")
    for name, call in run_calls().items():
        text = json.dumps(call)
        assert len(call["command"]) < kit.QUOTAS.command_characters
        print(f"{name}: run({text})")
    return total


def plan():
    """Each job's estimated time on one H100 from the measured rates (estimates, not measurements)."""
    for model in ("wrn-28-10", "wrn-16-8"):
        print(f"speed, {model}: compile about {H100_COMPILE_SECONDS[model]} s (measured), timed windows 20-30 s")
    print("speed: all cases with torch.compile, estimated 150-200 s of its 170 s budget; it skips what does not fit")
    # WRN-16-4: a quarter of WRN-16-8's multiply-adds; estimated at twice its rate (small layers fill an H100 less).
    wrn16_4 = 2 * H100_TRAIN_IMAGES_PER_SECOND["wrn-16-8"]
    per_epoch = CIFAR10_TRAIN / wrn16_4 + 0.5
    print(f"control: WRN-16-4, 20 epochs: keras-wrn about {per_epoch:.1f} s an epoch (estimated from WRN-16-8's "
          f"measured 32,000 img/s), 2 runs about {2 * (15 + 20 * per_epoch):.0f} s; the official code in float32 "
          f"estimated at half that rate, 2 runs about {2 * 20 * (CIFAR10_TRAIN / (wrn16_4 / 2) + 0.5):.0f} s")
    rate = H100_TRAIN_IMAGES_PER_SECOND["wrn-28-10"]
    seconds = 480 - 45 - 1.5 * H100_COMPILE_SECONDS["wrn-28-10"] - 30 - 60
    print(f"weights: WRN-28-10 at {rate} img/s (measured): {CIFAR10_TRAIN / rate:.1f} s an epoch, about "
          f"{int(seconds / (1.03 * CIFAR10_TRAIN / rate))} epochs in the 480 s budget (the paper: 200)")


def join(folders, target=None):
    """The weights job's parts (in `folders`: the two calls' files) -> the
    checked `.npz` (default: `exported/cifar10-MODEL/MODEL-cifar10.weights.npz`)."""
    records = [os.path.join(folder, "record.json") for folder in folders
               if os.path.exists(os.path.join(folder, "record.json"))]
    if not records:
        raise SystemExit(f"No record.json in {', '.join(folders)}: pass the folder the first call brought back.")
    with open(records[0]) as handle:
        record = json.load(handle)
    manifest = record["weights"]
    target = target or os.path.join(kit.ROOT, "exported", f"cifar10-{record['model']}", manifest["file"])
    os.makedirs(os.path.dirname(target), exist_ok=True)
    try:
        kit.join(manifest, folders, target)
    except kit.JoinError as error:
        raise SystemExit(f"Error: {error}") from None
    print(f"{target}: {manifest['bytes']} bytes, SHA-256 {manifest['sha256']}")
    return target


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    packing = commands.add_parser("pack", help="wheels and data into the kit folder; sizes and run calls")
    packing.add_argument("--kit", default=kit.KIT)
    packing.add_argument("--shared", default=SHARED_DATA, help="where cifar10-jpeg.tar.gz and the exact images are")
    commands.add_parser("plan", help="each job's estimated time on an H100")
    joining = commands.add_parser("join", help="the weights job's parts, from the calls' folders, into one file")
    joining.add_argument("folders", nargs="+")
    joining.add_argument("--to", help="the .npz to write (default: exported/cifar10-MODEL/)")
    args = parser.parse_args()
    if args.command == "pack":
        pack(args.kit, args.shared)
    elif args.command == "plan":
        plan()
    else:
        join(args.folders, args.to)


if __name__ == "__main__":
    main()
