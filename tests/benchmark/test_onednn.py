"""The oneDNN kernel breakdown: parsing the execution trace (lines in
oneDNN 3.x's format, as TensorFlow 2.21 and torch 2.14 print them) and,
in the slow tier, a real traced run of both frameworks on a small WRN."""

import importlib.util

import pytest

from keras_wrn.benchmark.onednn import format_breakdown, kernel_breakdown, parse_trace
from keras_wrn.errors import InvalidArgumentError

HAS_TORCH = importlib.util.find_spec("torch") is not None

TF_STRIDED = ("onednn_verbose,v1,primitive,exec,cpu,convolution,jit_bf16:avx512_core_bf16,backward_weights,"
              "src:bf16::blocked:acdb::f0 wei:bf16:a:blocked:ABcd16b16a::f0 bia:undef::undef::: "
              "dst:bf16::blocked:acdb::f0,,alg:convolution_direct,"
              "mb64_ic64oc128_ih34oh16kh3sh2dh0ph0_iw34ow16kw3sw2dw0pw0,11.147")
TORCH_STRIDED = ("onednn_verbose,v1,primitive,exec,cpu,convolution,jit_bf16:avx512_core_bf16,backward_weights,"
                 "src:bf16:a:blocked:aBcd16b::f0 wei:bf16:a:blocked:ABcd16b16a::f0 bia:undef::undef::: "
                 "dst:bf16:a:blocked:aBcd16b::f0,attr-scratchpad:user,alg:convolution_direct,"
                 "mb64_ic64oc128_ih32oh16kh3sh2dh0ph1_iw32ow16kw3sw2dw0pw1,8.5")
SHORTCUT = ("onednn_verbose,v1,primitive,exec,cpu,convolution,jit_bf16_1x1:avx512_core_bf16,backward_weights,"
            "src:bf16::blocked:acdb::f0 wei:bf16:a:blocked:ABcd16b16a::f0 bia:undef::undef::: "
            "dst:bf16::blocked:acdb::f0,,alg:convolution_direct,"
            "mb64_ic128oc256_ih16oh8kh1sh2dh0ph0_iw16ow8kw1sw2dw0pw0,0.936035")


def test_the_trace_is_summed_per_kernel_and_explicit_padding_is_folded_in():
    trace = [
        "onednn_verbose,v1,info,oneDNN v3.7.1 (commit unknown)",
        TF_STRIDED.replace("exec", "create:cache_miss", 1),  # a primitive's creation: not a kernel run
        TF_STRIDED, TF_STRIDED,
        SHORTCUT,
        "onednn_verbose,v1,primitive,exec,cpu,reorder,jit:uni,undef,src:f32::blocked:abcd::f0 "
        "dst:bf16::blocked:acdb::f0,,,64x3x32x32,0.25",
        "some other line a library printed",
    ]
    times = parse_trace(trace)
    strided = ("convolution", "backward_weights", "mb64_ic64oc128_ih32oh16kh3sh2dh0ph1_iw32ow16kw3sw2dw0pw1")
    assert times[strided] == pytest.approx(2 * 11.147)
    # The same problem as PyTorch's, which pads inside the convolution:
    assert set(parse_trace([TORCH_STRIDED])) == {strided}
    # A 1x1 shortcut is unpadded in both frameworks and stays as it is:
    assert ("convolution", "backward_weights", "mb64_ic128oc256_ih16oh8kh1sh2dh0ph0_iw16ow8kw1sw2dw0pw0") in times
    assert times["reorder", "undef", "64x3x32x32"] == pytest.approx(0.25)
    assert sum(times.values()) == pytest.approx(2 * 11.147 + 0.936035 + 0.25)


def test_bad_input():
    with pytest.raises(InvalidArgumentError, match="ImageNet model"):
        kernel_breakdown("wrn-50-2-bottleneck", 2)
    with pytest.raises(InvalidArgumentError, match="choose from float32, bfloat16"):
        kernel_breakdown("wrn-16-4", 2, precisions=["float16"])


@pytest.mark.slow
@pytest.mark.skipif(not HAS_TORCH, reason="the reference needs torch")
def test_both_frameworks_are_traced_and_their_convolutions_pair_up():
    result = kernel_breakdown("wrn-40-1", 4, precisions=("float32",), steps=1, windows=1, min_seconds=0.0,
                              log=lambda message: None)
    entry = result["precisions"]["float32"]
    convolutions = {side: {tuple(row[:3]) for row in entry[side]["kernels"] if row[0] == "convolution"}
                    for side in ("keras-wrn", "pytorch")}
    # WRN-40-1: a stem, 36 block convolutions and 2 projection shortcuts, of a
    # handful of distinct problems in each direction; every one of keras-wrn's
    # problems is one PyTorch runs too (padding folded in).
    assert len(convolutions["keras-wrn"]) >= 3 * 6
    assert convolutions["keras-wrn"] == convolutions["pytorch"]
    for side in ("keras-wrn", "pytorch"):
        assert 0 < entry[side]["onednn_ms"] < entry[side]["step_ms"] * 1.5
    assert entry["bound"] >= entry["speedup"] > 0
    assert "at most" in "\n".join(format_breakdown(result))
