"""tinygrad_edu: a small, readable autograd engine on numpy.

>>> from tinygrad_edu import Tensor
>>> w = Tensor([[0.5, -1.0]], requires_grad=True, name="w")
>>> loss = (w @ Tensor([[2.0], [1.0]])).sigmoid().sum()
>>> loss.backward()
>>> w.grad.round(4).tolist()
[[0.5, 0.25]]
"""

from .autograd import grad
from .check import check_backprop
from .diagnostics import LearnerWarning
from .gradcheck import GradcheckError, gradcheck
from .grad_mode import detect_anomaly, enable_grad, is_grad_enabled, no_grad
from .tensor import Tensor, concatenate, maximum, minimum, stack, where
from .jit import JitError, jit

__all__ = [
    "Tensor", "grad", "no_grad", "enable_grad", "is_grad_enabled", "detect_anomaly",
    "where", "maximum", "minimum", "concatenate", "stack", "gradcheck", "GradcheckError",
    "check_backprop", "LearnerWarning", "jit", "JitError",
]
__version__ = "0.1.0"
