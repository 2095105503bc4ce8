"""The block-type grammar of the CIFAR Wide ResNets (section 2.1, Tables 2-3).

A block type is the kernel sizes of its convolutions: the paper writes
B(3,3), B(3,1,3), ... (Table 2), and B(3,...,3) with l 3x3 convolutions for
the deepening factor l of Table 3. This module parses and names them, and
turns a depth into N, the number of blocks per group; `keras_wrn.models.cifar`
explains, with the parameter counts, why the rule is what it is.
"""

import re

from keras_wrn.errors import InvalidArgumentError

# Section 2.1, Table 2: the block types the paper studies, by kernel sizes.
PAPER_BLOCK_TYPES = ((3, 3), (3, 1, 3), (1, 3, 1), (1, 3), (3, 1), (3, 1, 1))


def format_block_type(kernel_sizes):
    """`(3, 1, 3)` -> `"B(3,1,3)"`, the paper's notation."""
    return "B(" + ",".join(str(k) for k in kernel_sizes) + ")"


def parse_block_type(block_type):
    """Normalises a block type to a tuple of kernel sizes.

    Accepts the paper's notation (`"B(3,1,3)"`), a compact form (`"b313"`,
    `"3,1,3"`) or a sequence (`(3, 1, 3)`). Valid types are the six of
    Table 2 and B(3,...,3) with any number l >= 1 of 3x3 convolutions
    (Table 3's deepening factor).
    """
    if isinstance(block_type, str):
        text = block_type.strip().upper().replace(" ", "")
        match = re.fullmatch(r"B?\(?([0-9,]+)\)?", text)
        digits = match.group(1) if match else ""
        if "," in digits:
            parts = [p for p in digits.split(",") if p]
        else:
            parts = list(digits)
        try:
            kernel_sizes = tuple(int(p) for p in parts)
        except ValueError:
            kernel_sizes = ()
    else:
        try:
            kernel_sizes = tuple(int(k) for k in block_type)
        except (TypeError, ValueError):
            kernel_sizes = ()
    known = kernel_sizes in PAPER_BLOCK_TYPES or (
        kernel_sizes and all(k == 3 for k in kernel_sizes)
    )
    if not known:
        listed = ", ".join(format_block_type(b) for b in PAPER_BLOCK_TYPES)
        raise InvalidArgumentError(
            f"Unknown block type. The paper's block types are {listed}, and "
            f"B(3,...,3) with l 3x3 convolutions (deepening factor l >= 1). "
            f"Received: block_type={block_type!r}"
        )
    return kernel_sizes


def depth_step(kernel_sizes):
    """How much depth one more block per group adds (see the module docstring):
    6 for the block types of Table 2, 3 * l for l 3x3 convolutions."""
    if all(k == 3 for k in kernel_sizes):
        return 3 * len(kernel_sizes)
    return 6


def blocks_per_group(depth, kernel_sizes):
    """N, the number of blocks in each of the three groups, for a depth.

    `depth = depth_step(kernel_sizes) * N + 4`; raises ValueError naming the
    valid depths when N is not a positive integer.
    """
    step = depth_step(kernel_sizes)
    if (
        isinstance(depth, bool)
        or not isinstance(depth, int)
        or depth < step + 4
        or (depth - 4) % step
    ):
        valid = ", ".join(str(step * n + 4) for n in range(1, 7))
        raise InvalidArgumentError(
            f"depth={depth!r} is not a valid depth for a "
            f"{format_block_type(kernel_sizes)} Wide ResNet: depth must be "
            f"{step} * N + 4 for N >= 1 blocks per group ({valid}, ...). "
            f"Received: depth={depth!r}"
        )
    return (depth - 4) // step


def registry_suffix(kernel_sizes):
    """The suffix of the registry's names: `""` for B(3,3), `"-b313"` for
    B(3,1,3), `"-l3"` for three 3x3 convolutions (`wrn-40-2-l3`)."""
    if kernel_sizes == (3, 3):
        return ""
    if all(k == 3 for k in kernel_sizes):
        return f"-l{len(kernel_sizes)}"
    return "-b" + "".join(str(k) for k in kernel_sizes)


def resolve_block_type(block_type, deepening_factor=None):
    """The kernel sizes from `block_type`, or `deepening_factor` 3x3
    convolutions (Table 3's l), which conflicts with any other block type."""
    kernel_sizes = parse_block_type(block_type)
    if deepening_factor is None:
        return kernel_sizes
    if isinstance(deepening_factor, bool) or not isinstance(deepening_factor, int) or deepening_factor < 1:
        raise InvalidArgumentError(
            f"deepening_factor (l) must be a positive integer. Received: deepening_factor={deepening_factor!r}")
    if kernel_sizes != (3, 3) and kernel_sizes != (3,) * deepening_factor:
        raise InvalidArgumentError(
            f"deepening_factor sets the block type to l 3x3 convolutions; it cannot be combined with "
            f"block_type={format_block_type(kernel_sizes)}. Received: block_type={block_type!r}, "
            f"deepening_factor={deepening_factor}")
    return (3,) * deepening_factor
