"""What made an artifact: the package versions and the CPU.

Run folders (`config.json`), model cards, benchmark results and the cached
XLA choices record both. The CPU is named by its model, microarchitecture
and the instruction sets that decide which kernels are fast (AVX2, AVX-512,
native bfloat16, VNNI int8, AMX).

Virtual machines often report only "AMD EPYC": the family and model
numbers name the generation (family 25 model 1 is a Zen 3 Milan, model 17 a
Zen 4 Genoa), so they are part of the description and of the key that
`training.xla_choice` caches its measurements under.

A base module (standard library only): every room uses it.
"""

import dataclasses
import os
import platform

# /proc/cpuinfo flag -> the name the README and the benchmarks print.
FEATURES = (
    ("avx2", "AVX2"),
    ("avx512f", "AVX-512"),
    ("avx512_bf16", "AVX512_BF16"),
    ("avx512_vnni", "AVX512_VNNI"),
    ("amx_bf16", "AMX_BF16"),
    ("amx_int8", "AMX_INT8"),
)

# (vendor, family, first model, last model) -> microarchitecture
_MICROARCHITECTURES = (
    ("AuthenticAMD", 23, 0x00, 0x2F, "Zen"),
    ("AuthenticAMD", 23, 0x30, 0xFF, "Zen 2"),
    ("AuthenticAMD", 25, 0x00, 0x0F, "Zen 3"),
    ("AuthenticAMD", 25, 0x20, 0x5F, "Zen 3"),
    ("AuthenticAMD", 25, 0x10, 0x1F, "Zen 4"),
    ("AuthenticAMD", 25, 0x60, 0xAF, "Zen 4"),
    ("AuthenticAMD", 26, 0x00, 0xFF, "Zen 5"),
)


@dataclasses.dataclass(frozen=True)
class CPU:
    model: str
    vendor: str = ""
    family: int | None = None
    model_number: int | None = None
    features: tuple = ()  # the names of FEATURES this CPU has
    cores: int = 1

    @property
    def microarchitecture(self):
        for vendor, family, first, last, name in _MICROARCHITECTURES:
            if (self.vendor, self.family) == (vendor, family) and first <= (self.model_number or 0) <= last:
                return name
        return None

    def has(self, feature):
        return feature in self.features

    @property
    def tag(self):
        """The generation, short, for file names: "zen4" (the model name
        where the generation is unknown)."""
        return (self.microarchitecture or self.model).lower().replace(" ", "")

    @property
    def native_bfloat16(self):
        """Whether the CPU multiplies bfloat16 in hardware (AVX512_BF16 or
        AMX), where oneDNN's bf16 kernels outrun float32."""
        return self.has("AVX512_BF16") or self.has("AMX_BF16")

    def describe(self):
        """"AMD EPYC (Zen 4; AVX2 AVX-512 AVX512_BF16 AVX512_VNNI), 2 cores"."""
        details = [d for d in (self.microarchitecture, " ".join(self.features) or "no AVX2") if d]
        return f"{self.model} ({'; '.join(details)}), {self.cores} cores"

    def key(self):
        """What identifies this kind of CPU for cached measurements."""
        return f"{self.vendor} {self.model} family {self.family} model {self.model_number} " \
               f"[{' '.join(self.features)}] x{self.cores}"

    def to_dict(self):
        return {**dataclasses.asdict(self), "features": list(self.features),
                "microarchitecture": self.microarchitecture, "description": self.describe()}


def cpu(cpuinfo="/proc/cpuinfo"):
    """The CPU of this machine (Linux: from /proc/cpuinfo; elsewhere the
    platform's name only)."""
    fields = {}
    try:
        with open(cpuinfo) as handle:
            for line in handle:
                if not line.strip():
                    break  # the first processor is enough
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    flags = set(fields.get("flags", "").split())

    def number(key):
        value = fields.get(key, "")
        return int(value) if value.isdigit() else None

    return CPU(
        model=fields.get("model name") or platform.processor() or platform.machine() or "unknown CPU",
        vendor=fields.get("vendor_id", ""),
        family=number("cpu family"),
        model_number=number("model"),
        features=tuple(name for flag, name in FEATURES if flag in flags),
        cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1,
    )


def package_versions(*extra):
    """The versions that made an artifact: keras_wrn, Python, Keras and
    TensorFlow, and each installed package of `extra` (distribution names),
    read from package metadata without importing them."""
    from importlib.metadata import PackageNotFoundError, version

    from keras_wrn._version import __version__

    found = {"keras_wrn": __version__, "python": platform.python_version()}
    for names in (("keras",), ("tensorflow", "tensorflow-cpu"), *((name,) for name in extra)):
        for name in names:
            try:
                found[names[0].replace("-", "_")] = version(name)
                break
            except PackageNotFoundError:
                continue
    return found
