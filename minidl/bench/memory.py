"""Peak memory of one conv C forward + backward (32x32x32x32 -> 64, k3 p1), minidl vs PyTorch.

The method, the same for both frameworks: a fresh interpreter builds the inputs,
runs one small convolution (so numba loads its kernels and PyTorch sets up its
pools), reads its resident memory (VmRSS), resets the kernel's high-water mark
(writing 5 to /proc/self/clear_refs, Linux >= 4.0), runs one forward + backward
of conv C and reads the high-water mark again (VmHWM). The difference is the
peak of the memory that forward + backward touched on top of its inputs: the
output, what forward saved, the scratch buffers (minidl's im2col columns) and
the gradients. It counts pages actually written, whichever allocator made them.

For minidl the table also gives tracemalloc's peak (NumPy reports every array
it allocates to tracemalloc), a second opinion that counts bytes allocated
rather than pages touched. PyTorch's CPU allocator keeps no such statistics.
"""

from __future__ import annotations

import subprocess
import sys

CHILD = r"""
import sys
import numpy as np

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field)

framework = sys.argv[1]
rng = np.random.default_rng(0)
arrays = [rng.standard_normal(s).astype(np.float32)
          for s in [(32, 32, 32, 32), (64, 32, 3, 3), (64,), (32, 64, 32, 32)]]
small = [rng.standard_normal(s).astype(np.float32)
         for s in [(2, 32, 8, 8), (64, 32, 3, 3), (64,), (2, 64, 8, 8)]]
if framework == "torch":
    import torch
    torch.set_num_threads(2)
    def leaves(x, w, b, g):
        return [torch.tensor(a, requires_grad=True) for a in (x, w, b)] + [torch.tensor(g)]
    def step(x, w, b, g):
        torch.nn.functional.conv2d(x, w, b, 1, 1).backward(g)
else:
    import minidl.nn.functional as F
    from minidl import Tensor
    def leaves(x, w, b, g):
        return [Tensor(a, requires_grad=True) for a in (x, w, b)] + [g]
    def step(x, w, b, g):
        F.conv2d(x, w, b, 1, 1).backward(g)
step(*leaves(*small))
inputs = leaves(*arrays)
before = status("VmRSS")
open("/proc/self/clear_refs", "w").write("5")
step(*inputs)
peak = status("VmHWM") - before
traced = 0
if framework == "minidl":
    import tracemalloc
    inputs = leaves(*arrays)
    tracemalloc.start()
    step(*inputs)
    traced = tracemalloc.get_traced_memory()[1]
print(peak, traced)
"""


def peak_bytes(framework: str) -> tuple[int, int]:
    """(peak resident bytes above the inputs, tracemalloc peak or 0) in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", CHILD, framework], capture_output=True,
                         text=True, check=True)
    rss, traced = out.stdout.split()
    return int(rss), int(traced)


def run(quick: bool = False) -> tuple[int, int]:
    """Print the comparison; return (minidl bytes, PyTorch bytes)."""
    repeat = 1 if quick else 3
    ours = [peak_bytes("minidl") for _ in range(repeat)]
    theirs = [peak_bytes("torch")[0] for _ in range(repeat)]
    rss, traced = min(r for r, _ in ours), min(t for _, t in ours)
    torch_rss = min(theirs)
    mb = 1 / 2**20
    print("peak memory of one conv C forward + backward (32x32x32x32 -> 64, k3 p1), above the "
          "inputs;\n  resident pages touched (VmHWM after resetting it), fresh interpreter each, "
          f"least of {repeat}")
    print(f"  minidl {rss * mb:.1f} MB (tracemalloc peak {traced * mb:.1f} MB), "
          f"PyTorch {torch_rss * mb:.1f} MB: ratio {rss / torch_rss:.2f}, goal <= 1.5")
    return rss, torch_rss
