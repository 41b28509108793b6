"""A way out to PyTorch and back: the same network, the same weights, the same outputs.

``to_torch(model)`` gives an equivalent ``torch.nn.Sequential``; ``from_torch(module)`` the reverse, for
``Linear``, ``BatchNorm1d``, ``Conv2d``, ``MaxPool2d``, ``AvgPool2d``, ``Flatten`` and the activations this
engine has (Sigmoid, Tanh, ReLU, Identity, Softmax, LogSoftmax). Layer ``layers.i`` here is layer ``i`` there,
so ``layers.0.weight`` is PyTorch's ``0.weight``. A batch norm crosses over with its running statistics
(buffers on both sides), its eps and momentum, and its mode: a layer in evaluation mode here is in evaluation
mode there.

Our ``Linear`` computes ``x @ weight`` with ``weight`` of shape (in, out); PyTorch's computes ``x @ weight.T``
with ``weight`` of shape (out, in). Crossing over transposes every Linear weight; biases are the same.
``Conv2d`` keeps PyTorch's layout, (out_channels, in_channels, kh, kw): its weights cross over as they are.
PyTorch's options this engine does not have (dilation, groups, ceil_mode, a padding of "same", ...) are refused
by name rather than dropped.

PyTorch is optional: it is imported inside these functions only (``pip install 'tinygrad_edu[torch]'``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import nn

__all__ = ["to_torch", "from_torch"]

_SIMPLE = ("Sigmoid", "Tanh", "ReLU", "Identity")     # the same class name, no arguments, on both sides
_AXIS = ("Softmax", "LogSoftmax")                      # our axis is PyTorch's dim
_POOLS = ("MaxPool2d", "AvgPool2d")                    # kernel_size and stride, the same on both sides
_SUPPORTED = ("Linear, BatchNorm1d, Conv2d, " + ", ".join(_POOLS + ("Flatten",) + _SIMPLE + _AXIS)
              + " and Sequential (or MLP)")
_DTYPES = (np.float64, np.float32)


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ImportError("tinygrad_edu.interop needs PyTorch, which is optional: pip install 'tinygrad_edu[torch]'"
                          ) from None
    return torch


def to_torch(model: nn.Module) -> Any:
    """An equivalent ``torch.nn.Sequential`` of ``model`` (a Sequential, an MLP, or one layer), weights copied.

    Parameters keep their dtype (float64 stays float64) and live on the CPU.
    """
    torch = _torch()
    layers = list(model) if isinstance(model, nn.Sequential) else [model]
    converted = [_layer_to_torch(torch, layer, f"layers.{i}" if isinstance(model, nn.Sequential) else "model")
                 for i, layer in enumerate(layers)]
    return torch.nn.Sequential(*converted)


def _layer_to_torch(torch: Any, layer: nn.Module, where: str) -> Any:
    kind = type(layer).__name__
    if isinstance(layer, nn.Sequential):
        inner = [_layer_to_torch(torch, sub, f"{where}.layers.{i}") for i, sub in enumerate(layer)]
        return torch.nn.Sequential(*inner)
    if isinstance(layer, (nn.Linear, nn.BatchNorm1d)):
        dtypes = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}
        if layer.weight.dtype not in dtypes:
            raise TypeError(f"to_torch: {where} ({kind}) holds {layer.weight.dtype} weights; only float64 and "
                            f"float32 cross over.")
        dtype = dtypes[layer.weight.dtype]
    if isinstance(layer, nn.BatchNorm1d):
        norm = torch.nn.BatchNorm1d(layer.num_features, eps=layer.eps, momentum=layer.momentum, dtype=dtype)
        with torch.no_grad():
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(norm, name).copy_(torch.from_numpy(getattr(layer, name).data.copy()))
        return norm.train(layer.training)
    if isinstance(layer, nn.Linear):
        linear = torch.nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None, dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(layer.weight.data.T.copy()))   # (in, out) -> (out, in)
            if layer.bias is not None:
                linear.bias.copy_(torch.from_numpy(layer.bias.data.copy()))
        return linear
    if type(layer) is nn.Conv2d:
        if layer.weight.dtype not in _DTYPES:
            raise TypeError(f"to_torch: {where} (Conv2d) holds {layer.weight.dtype} weights; only float64 and "
                            f"float32 cross over.")
        conv = torch.nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
                               padding=layer.padding, bias=layer.bias is not None,
                               dtype=torch.float64 if layer.weight.dtype == np.float64 else torch.float32)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(layer.weight.data.copy()))   # the same layout on both sides
            if layer.bias is not None:
                conv.bias.copy_(torch.from_numpy(layer.bias.data.copy()))
        return conv
    if isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)) and type(layer) is getattr(nn, kind):
        return getattr(torch.nn, kind)(layer.kernel_size, layer.stride)
    if type(layer) is nn.Flatten:
        return torch.nn.Flatten(layer.start_dim, layer.end_dim)
    if kind in _SIMPLE and type(layer) is getattr(nn, kind):
        return getattr(torch.nn, kind)()
    if isinstance(layer, (nn.Softmax, nn.LogSoftmax)) and type(layer) is getattr(nn, kind):
        return getattr(torch.nn, kind)(dim=layer.axis)
    raise TypeError(f"to_torch: {where} is a {kind}, which has no PyTorch counterpart here; supported: "
                    f"{_SUPPORTED}.")


def from_torch(module: Any) -> nn.Module:
    """The reverse of ``to_torch``: our ``nn.Sequential`` for a ``torch.nn.Sequential``, or our layer for one layer.

    Weights are copied (float64 and float32 keep their dtype), so later training on either side does not
    change the other.
    """
    torch = _torch()
    if isinstance(module, torch.nn.Sequential):
        return nn.Sequential(*(_layer_from_torch(torch, sub, str(i)) for i, sub in enumerate(module)))
    return _layer_from_torch(torch, module, "module")


def _layer_from_torch(torch: Any, layer: Any, where: str) -> nn.Module:
    kind = type(layer).__name__
    if isinstance(layer, torch.nn.Sequential):
        return nn.Sequential(*(_layer_from_torch(torch, sub, f"{where}.{i}") for i, sub in enumerate(layer)))
    if type(layer) is torch.nn.Linear:
        weight = layer.weight.detach().cpu().numpy()
        if weight.dtype not in (np.float64, np.float32):
            raise TypeError(f"from_torch: {where} (Linear) holds {weight.dtype} weights; convert the model with "
                            f".double() or .float() first.")
        linear = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None, init="zeros",
                           dtype=weight.dtype)
        linear.weight.data = weight.T.copy()   # (out, in) -> (in, out)
        if linear.bias is not None:  # made with a bias exactly when the torch layer has one
            linear.bias.data = layer.bias.detach().cpu().numpy().copy()
        return linear
    if type(layer) is torch.nn.BatchNorm1d:
        return _batchnorm_from_torch(layer, where)
    if type(layer) is torch.nn.Conv2d:
        _refuse_options(where, layer, {"dilation": (1, 1), "groups": 1, "padding_mode": "zeros"})
        if isinstance(layer.padding, str) and layer.padding != "valid":  # "valid" is no padding
            raise ValueError(f"from_torch: {where} (Conv2d) has padding={layer.padding!r}, which this engine does "
                             f"not have; give it as numbers (for an odd kernel k, 'same' is padding=k // 2).")
        weight = layer.weight.detach().cpu().numpy()
        if weight.dtype not in _DTYPES:
            raise TypeError(f"from_torch: {where} (Conv2d) holds {weight.dtype} weights; convert the model with "
                            f".double() or .float() first.")
        conv = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                         0 if isinstance(layer.padding, str) else layer.padding, bias=layer.bias is not None,
                         init="zeros", dtype=weight.dtype)
        conv.weight.data = weight.copy()
        if conv.bias is not None:  # made with a bias exactly when the torch layer has one
            conv.bias.data = layer.bias.detach().cpu().numpy().copy()
        return conv
    if kind in _POOLS and type(layer) is getattr(torch.nn, kind):
        defaults: dict[str, Any] = {"padding": 0, "ceil_mode": False}
        defaults.update({"dilation": 1, "return_indices": False} if kind == "MaxPool2d" else
                        {"count_include_pad": True, "divisor_override": None})
        _refuse_options(where, layer, defaults)
        # PyTorch stores a stride of None as the kernel size; None is this engine's way to say the same
        return getattr(nn, kind)(layer.kernel_size, None if layer.stride == layer.kernel_size else layer.stride)
    if type(layer) is torch.nn.Flatten:
        return nn.Flatten(layer.start_dim, layer.end_dim)
    if kind in _SIMPLE and type(layer) is getattr(torch.nn, kind):
        return getattr(nn, kind)()
    if kind in _AXIS and type(layer) is getattr(torch.nn, kind):
        if layer.dim is None:
            raise ValueError(f"from_torch: {where} is a {kind} without dim; give it one, e.g. {kind}(dim=1).")
        return getattr(nn, kind)(axis=layer.dim)
    raise TypeError(f"from_torch: {where} is a {kind}, which this engine does not have; supported: "
                    f"{_SUPPORTED}.")


def _refuse_options(where: str, layer: Any, defaults: dict[str, Any]) -> None:
    """A PyTorch option this engine does not have, set to anything but its default, is refused by name."""
    for option, default in defaults.items():
        value = getattr(layer, option)
        same = value == default or (isinstance(default, tuple) and value in (default, default[0]))
        if not same:
            raise ValueError(f"from_torch: {where} is a {type(layer).__name__} with {option}={value!r}, which this "
                             f"engine does not have (only {option}={default!r}); the layer would compute something "
                             f"else here.")


def _batchnorm_from_torch(layer: Any, where: str) -> nn.BatchNorm1d:
    missing = [what for what, ok in (("affine=True (a weight and a bias)", layer.affine),
                                     ("track_running_stats=True", layer.track_running_stats),
                                     ("a number for momentum (None, a cumulative average, is not supported)",
                                      layer.momentum is not None)) if not ok]
    if missing:
        raise ValueError(f"from_torch: {where} is a BatchNorm1d without {' and '.join(missing)}; this engine's "
                         f"BatchNorm1d has them (PyTorch's defaults).")
    weight = layer.weight.detach().cpu().numpy()
    if weight.dtype not in (np.float64, np.float32):
        raise TypeError(f"from_torch: {where} (BatchNorm1d) holds {weight.dtype} weights; convert the model with "
                        f".double() or .float() first.")
    norm = nn.BatchNorm1d(layer.num_features, eps=layer.eps, momentum=layer.momentum, dtype=weight.dtype)
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(norm, name).data = getattr(layer, name).detach().cpu().numpy().astype(weight.dtype)  # a copy
    norm.train(layer.training)
    return norm
