"""Up-sampling layers: Upsample and its two fixed-mode forms (no parameters).

They call ``F.interpolate`` (minidl/ops/upsample.py), where the index formulas are.
"""

from __future__ import annotations

from minidl.nn.module import Module
from minidl.ops.upsample import MODES, interpolate


class Upsample(Module):
    """Resize [N, C, H, W] to ``size`` or by ``scale_factor`` (exactly one of them).

    mode: 'nearest' (default), 'nearest-exact', 'bilinear' or 'area'; ``align_corners``
    only with 'bilinear' (see ``F.interpolate``).
    """

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"Upsample: mode must be one of {MODES}, got {mode!r}")
        if (size is None) == (scale_factor is None):
            raise ValueError(f"Upsample: give exactly one of size and scale_factor, got "
                             f"size={size!r}, scale_factor={scale_factor!r}")
        self.size, self.scale_factor, self.mode = size, scale_factor, mode
        self.align_corners, self.recompute_scale_factor = align_corners, recompute_scale_factor

    def forward(self, x):
        return interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners,
                           self.recompute_scale_factor)

    def extra_repr(self) -> str:
        what = f"size={self.size}" if self.size is not None else \
            f"scale_factor={self.scale_factor}"
        text = f"{what}, mode={self.mode!r}"
        if self.align_corners is not None:
            text += f", align_corners={self.align_corners}"
        return text


class UpsamplingNearest2d(Upsample):
    """``Upsample(..., mode='nearest')``."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """``Upsample(..., mode='bilinear', align_corners=True)`` (PyTorch's choice for this class)."""

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)
