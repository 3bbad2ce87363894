"""Optimizers, learning-rate schedules and batch-size scaling rules (PyTorch's names).

    from minidl import optim
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)

Gradient clipping lives where PyTorch keeps it: ``minidl.nn.utils.clip_grad_norm_``.
"""

from minidl.optim import lr_scheduler
from minidl.optim.adadelta import Adadelta
from minidl.optim.adagrad import Adagrad
from minidl.optim.adam import Adam, AdamW
from minidl.optim.optimizer import Optimizer
from minidl.optim.rmsprop import RMSprop
from minidl.optim.scaling import linear_scaling_rule, sqrt_scaling_rule
from minidl.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "lr_scheduler",
           "linear_scaling_rule", "sqrt_scaling_rule"]
