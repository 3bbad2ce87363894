"""minidl.nn: Modules (layers that own Parameters), init schemes and the functional ops.

A plain list of imports: each layer file adds its names here.
"""

# ruff: noqa: F401, I001  (a plain list: Module first, then one line per layer file)
from minidl.nn import functional, init
from minidl.nn.module import Module, Parameter
from minidl.nn.linear import Flatten, Identity, Linear
from minidl.nn.containers import ModuleDict, ModuleList, Sequential
from minidl.nn.activation import ELU, GELU, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from minidl.nn.dropout import Dropout, Dropout2d
from minidl.nn.embedding import Embedding
from minidl.nn import utils
from minidl.nn.loss import (
    BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss, MSELoss, NLLLoss,
    SmoothL1Loss,
)
from minidl.nn.rnn_cell import GRUCell, LSTMCell, RNNCell
from minidl.nn.rnn import GRU, LSTM, RNN, detach_state, dynamic_rnn, static_rnn
from minidl.nn.conv import Conv2d, ConvTranspose2d
from minidl.nn.pool import (AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, MaxPool2d,
                               MaxUnpool2d)
from minidl.nn.upsample import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d
from minidl.nn.norm import BatchNorm1d, BatchNorm2d, GroupNorm, InstanceNorm2d, LayerNorm
from minidl.nn.transformer import (MultiheadAttention, TransformerDecoderLayer,
                                   TransformerEncoderLayer)
