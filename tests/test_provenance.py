"""What made an artifact: the CPU named by generation and instruction sets,
and the package versions, read from package metadata."""

from keras_wrn import provenance

ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
flags\t\t: fpu avx2 fma avx512f avx512dq avx512_bf16 avx512_vnni

processor\t: 1
"""
ZEN3 = ZEN4.replace("model\t\t: 17", "model\t\t: 1").replace(" avx512f avx512dq avx512_bf16 avx512_vnni", "")


def test_the_cpu_is_named_by_generation_and_instruction_sets(tmp_path):
    (tmp_path / "zen4").write_text(ZEN4)
    (tmp_path / "zen3").write_text(ZEN3)
    zen4, zen3 = provenance.cpu(str(tmp_path / "zen4")), provenance.cpu(str(tmp_path / "zen3"))
    assert zen4.microarchitecture == "Zen 4" and zen3.microarchitecture == "Zen 3"
    assert zen4.features == ("AVX2", "AVX-512", "AVX512_BF16", "AVX512_VNNI") and zen3.features == ("AVX2",)
    assert zen4.describe().startswith("AMD EPYC (Zen 4; AVX2 AVX-512 AVX512_BF16 AVX512_VNNI)")
    assert zen4.key() != zen3.key()
    assert zen4.native_bfloat16 and not zen3.native_bfloat16
    assert (zen4.tag, zen3.tag) == ("zen4", "zen3")  # the benchmarks' result file names
    assert provenance.cpu().model and provenance.cpu(str(tmp_path / "missing")).model


def test_package_versions_come_from_package_metadata():
    import keras_wrn

    versions = provenance.package_versions("numpy", "no-such-package")
    assert versions["keras_wrn"] == keras_wrn.__version__ and versions["keras"] and versions["numpy"]
    assert "no_such_package" not in versions and versions["python"].count(".") == 2
    assert versions["tensorflow"]  # installed with the package
