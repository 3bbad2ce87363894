"""Step through a numba kernel line by line.

numba compiles kernels to machine code, which a debugger cannot step into.
With NUMBA_DISABLE_JIT=1 every kernel runs as the plain Python loop it is
written as, so pdb (or your IDE) can stop inside it:

    NUMBA_DISABLE_JIT=1 python -m pdb -c "b $PWD/minidl/kernels/conv.py:87" -c continue \\
        examples/step_through_kernel.py

(pdb wants the kernel file's full path, hence $PWD when run from the repository.)

Then `n` steps, `p row, iy, ox` prints loop variables, `c` continues. Without
the variable the same script runs the compiled kernel (and prints the same).
"""

import numpy as np

import minidl
import minidl.nn.functional as F


def main():
    x = minidl.tensor(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4))
    weight = minidl.ones(1, 1, 3, 3)
    out = F.conv2d(x, weight, padding=1)  # im2col runs here: minidl/kernels/conv.py
    print("input:\n", x.data[0, 0])
    print("3x3 box sums (conv2d with a weight of ones, padding 1):\n", out.data[0, 0])
    return out


if __name__ == "__main__":
    main()
