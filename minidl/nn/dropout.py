"""Dropout modules: active in ``train()`` mode, the identity in ``eval()`` mode."""

from __future__ import annotations

from minidl.nn.module import Module
from minidl.ops.dropout import check_dropout_p, dropout, dropout2d


class Dropout(Module):
    """Inverted dropout: zero elements with probability ``p``, scale the rest by 1 / (1 - p).

    ``inplace`` is accepted for PyTorch compatibility and ignored.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        check_dropout_p(p, "Dropout")
        self.p = p

    def forward(self, x):
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Dropout2d(Module):
    """Channel dropout on [N, C, H, W]: zero whole feature maps with probability ``p``."""

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        check_dropout_p(p, "Dropout2d")
        self.p = p

    def forward(self, x):
        return dropout2d(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
