"""Convolution and pooling: every op against float64 central differences and PyTorch, on random geometries.

Hypothesis draws the batch, the channels, the image and kernel sizes, the strides and the paddings; every
gradient is checked with a random, non-uniform upstream gradient (``gradcheck`` draws one). The PyTorch
checks skip without torch. Max-pool ties are checked exactly: the gradient goes to the first maximum of a
window, as in PyTorch; the course's loops send it to every maximum (``manual.conv_loops``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinygrad_edu import Tensor, conv_args, grad, gradcheck, ops
from tinygrad_edu.manual import conv_im2col, conv_loops
from tinygrad_edu.tensor import apply_op

TOL = 1e-10
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- the ops as a learner calls them ------------------------------------------------------------------------

def conv2d(x: Tensor, w: Tensor, b: Tensor | None = None, stride: Any = 1, padding: Any = 0) -> Tensor:
    return x.conv2d(w, b, stride=stride, padding=padding)


def max_pool2d(x: Tensor, kernel_size: Any, stride: Any = None) -> Tensor:
    return x.max_pool2d(kernel_size, stride)


def avg_pool2d(x: Tensor, kernel_size: Any, stride: Any = None) -> Tensor:
    return x.avg_pool2d(kernel_size, stride)


def flatten(x: Tensor, start_dim: int = 1, end_dim: int = -1) -> Tensor:
    return x.flatten(start_dim, end_dim)


# -- random geometries --------------------------------------------------------------------------------------

@st.composite
def conv_geometry(draw: Any) -> dict[str, Any]:
    """A small batch, kernel, stride and padding whose padded image holds at least one window."""
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    size = tuple(draw(st.integers(max(1, k - 2 * p), k - 2 * p + 5)) for k, p in zip(kernel, padding))
    return {"n": draw(st.integers(1, 3)), "c": draw(st.integers(1, 3)), "o": draw(st.integers(1, 3)),
            "size": size, "kernel": kernel, "stride": stride, "padding": padding, "bias": draw(st.booleans()),
            "seed": draw(st.integers(0, 2**16))}


@st.composite
def pool_geometry(draw: Any) -> dict[str, Any]:
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    size = (draw(st.integers(kernel[0], kernel[0] + 4)), draw(st.integers(kernel[1], kernel[1] + 4)))
    return {"n": draw(st.integers(1, 3)), "c": draw(st.integers(1, 3)), "size": size, "kernel": kernel,
            "stride": stride, "seed": draw(st.integers(0, 2**16))}


def _conv(g: dict[str, Any]) -> Any:
    """conv2d with g's stride and padding, on (x, w) or (x, w, b)."""
    return lambda x, w, *b: conv2d(x, w, b[0] if b else None, stride=g["stride"], padding=g["padding"])


def _conv_inputs(g: dict[str, Any]) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(g["seed"])
    x = rng.uniform(-1, 1, (g["n"], g["c"]) + g["size"])
    w = rng.uniform(-1, 1, (g["o"], g["c"]) + g["kernel"])
    return (x, w, rng.uniform(-1, 1, g["o"])) if g["bias"] else (x, w)


def _distinct(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """All values at least 0.08 apart, so no window of a max-pool ties while the differences move one by 1e-6."""
    size = int(np.prod(shape))
    rng = np.random.default_rng(seed)
    return ((rng.permutation(size) - size / 2) * 0.1 + rng.uniform(-0.01, 0.01, size)).reshape(shape)


def _leaves(*arrays: np.ndarray) -> list[Tensor]:
    return [Tensor(a.copy(), requires_grad=True) for a in arrays]


# -- central differences ------------------------------------------------------------------------------------

@SETTINGS
@given(conv_geometry())
def test_conv2d_gradients_match_central_differences(g: dict[str, Any]) -> None:
    leaves = _leaves(*_conv_inputs(g))
    assert gradcheck(_conv(g), leaves)


@SETTINGS
@given(pool_geometry())
def test_pool_gradients_match_central_differences(g: dict[str, Any]) -> None:
    (x,) = _leaves(_distinct((g["n"], g["c"]) + g["size"], g["seed"]))
    assert gradcheck(lambda t: max_pool2d(t, g["kernel"], g["stride"]), [x])
    assert gradcheck(lambda t: avg_pool2d(t, g["kernel"], g["stride"]), [x])


@SETTINGS
@given(st.lists(st.integers(1, 3), min_size=1, max_size=4), st.data())
def test_flatten_gradients_match_central_differences(shape: list[int], data: Any) -> None:
    start = data.draw(st.integers(-len(shape), len(shape) - 1))
    end = data.draw(st.integers(start % len(shape), len(shape) - 1))
    (x,) = _leaves(np.random.default_rng(len(shape)).uniform(-1, 1, shape))
    out = flatten(x, start, end)
    assert out.shape == tuple(shape[:start % len(shape)]) + (int(np.prod(shape[start % len(shape):end + 1])),) \
        + tuple(shape[end + 1:])
    assert gradcheck(lambda t: flatten(t, start, end), [x])


@SETTINGS
@given(conv_geometry())
def test_conv2d_second_derivatives_match_central_differences(g: dict[str, Any]) -> None:
    """The rules themselves, differentiated (create_graph=True): a gradient penalty's gradient."""
    leaves = _leaves(*_conv_inputs(g))

    def penalty(*t: Tensor) -> Tensor:
        out = _conv(g)(*t)
        firsts = grad((out * out).sum(), list(t), create_graph=True)
        return sum(((d * d).sum() for d in firsts), Tensor(0.0))

    assert gradcheck(penalty, leaves)


@SETTINGS
@given(conv_geometry())
def test_im2col_and_col2im_are_transposes(g: dict[str, Any]) -> None:
    """<im2col(x), c> = <x, col2im(c)>: the two are each other's transpose, as the rules assume."""
    x = _conv_inputs(g)[0]
    kwargs = conv_args.conv2d(x.shape, (1, g["c"]) + g["kernel"], stride=g["stride"], padding=g["padding"])
    cols = ops.im2col(x, g["kernel"], kwargs["stride"], kwargs["padding"])
    c = np.random.default_rng(g["seed"] + 1).standard_normal(cols.shape)
    back = ops.col2im(c, x.shape[2:], g["kernel"], kwargs["stride"], kwargs["padding"])
    assert back.shape == x.shape
    np.testing.assert_allclose(np.sum(cols * c), np.sum(x * back), rtol=1e-12)


# -- max-pool ties: PyTorch's rule ----------------------------------------------------------------------------

def test_max_pool_sends_a_tied_gradient_to_the_first_maximum_only() -> None:
    x = Tensor(np.array([[1.0, 3.0], [3.0, 2.0]]).reshape(1, 1, 2, 2), requires_grad=True)
    max_pool2d(x, 2).backward(gradient=np.full((1, 1, 1, 1), 5.0))
    np.testing.assert_array_equal(x.grad.reshape(2, 2), [[0.0, 5.0], [0.0, 0.0]])
    # the course's mask sends it to both maxima; its first-maximum option agrees with the engine
    _, cache = conv_loops.pool_forward(x.data.transpose(0, 2, 3, 1), {"f": 2, "stride": 2})
    course = conv_loops.pool_backward(np.full((1, 1, 1, 1), 5.0), cache)
    np.testing.assert_array_equal(course.reshape(2, 2), [[0.0, 5.0], [5.0, 0.0]])
    first = conv_loops.pool_backward(np.full((1, 1, 1, 1), 5.0), cache, ties="first")
    np.testing.assert_array_equal(first.transpose(0, 3, 1, 2), x.grad)


def test_overlapping_windows_add_their_gradients_at_a_shared_maximum() -> None:
    x = Tensor(np.array([[0.0, 1.0, 0.0], [0.0, 9.0, 0.0], [2.0, 0.0, 3.0]]).reshape(1, 1, 3, 3),
               requires_grad=True)
    out = max_pool2d(x, 2, stride=1)  # the 9 is the maximum of all four windows
    np.testing.assert_array_equal(out.data.reshape(2, 2), [[9.0, 9.0], [9.0, 9.0]])
    out.backward(gradient=np.array([1.0, 2.0, 4.0, 8.0]).reshape(1, 1, 2, 2))
    np.testing.assert_array_equal(x.grad.reshape(3, 3), [[0, 0, 0], [0, 15.0, 0], [0, 0, 0]])


# -- the hand-derived references agree with the engine -------------------------------------------------------

@settings(max_examples=10, deadline=None)
@given(conv_geometry())
def test_course_loops_and_im2col_agree_with_the_engine(g: dict[str, Any]) -> None:
    """The course's layout (channels-last, W as (f, f, n_C_prev, n_C)) mapped onto the engine's NCHW."""
    f = min(g["kernel"])  # the course's filters are square, and so are its strides and paddings
    g = {**g, "kernel": (f, f), "stride": g["stride"][0], "padding": max(g["padding"]), "bias": True}
    x, w, b = _leaves(*_conv_inputs(g))
    out = conv2d(x, w, b, stride=g["stride"], padding=g["padding"])
    dZ = np.random.default_rng(g["seed"]).standard_normal(out.shape)
    out.backward(gradient=dZ)
    A_prev, W = x.data.transpose(0, 2, 3, 1), w.data.transpose(2, 3, 1, 0)
    hparameters = {"stride": g["stride"], "pad": g["padding"]}
    caches = {}
    for module in (conv_loops, conv_im2col):
        Z, caches[module] = module.conv_forward(A_prev, W, b.data.reshape(1, 1, 1, -1), hparameters)
        np.testing.assert_allclose(Z.transpose(0, 3, 1, 2), out.data, rtol=1e-12, atol=1e-12)
        dA_prev, dW, db = module.conv_backward(dZ.transpose(0, 2, 3, 1), caches[module])
        np.testing.assert_allclose(dA_prev.transpose(0, 3, 1, 2), x.grad, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(dW.transpose(3, 2, 0, 1), w.grad, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(db.reshape(-1), b.grad, rtol=1e-12, atol=1e-12)
    rot180 = conv_loops.conv_backward_rot180(dZ.transpose(0, 2, 3, 1), caches[conv_loops])
    np.testing.assert_allclose(rot180.transpose(0, 3, 1, 2), x.grad, rtol=1e-12, atol=1e-12)


@settings(max_examples=10, deadline=None)
@given(pool_geometry(), st.sampled_from(["max", "average"]))
def test_course_pools_agree_with_the_engine(g: dict[str, Any], mode: str) -> None:
    f = min(g["kernel"])  # square windows and strides, as the course's
    stride = f if g["stride"] is None else g["stride"][0]
    (x,) = _leaves(np.random.default_rng(g["seed"]).integers(0, 3, (g["n"], g["c"]) + g["size"]).astype(float))
    out = (max_pool2d if mode == "max" else avg_pool2d)(x, f, stride)
    dA = np.random.default_rng(g["seed"]).standard_normal(out.shape)
    out.backward(gradient=dA)
    for module in (conv_loops, conv_im2col):
        A, cache = module.pool_forward(x.data.transpose(0, 2, 3, 1), {"f": f, "stride": stride}, mode)
        np.testing.assert_allclose(A.transpose(0, 3, 1, 2), out.data, rtol=1e-12)
        back = module.pool_backward(dA.transpose(0, 2, 3, 1), cache, mode, ties="first")
        np.testing.assert_allclose(back.transpose(0, 3, 1, 2), x.grad, rtol=1e-12, atol=1e-12)


def test_course_network_gradients_match_central_differences() -> None:
    rng = np.random.default_rng(3)
    params = conv_loops.init_params(rng, f=3, n_C=2, image=(6, 6, 1))
    X, Y = rng.uniform(0, 1, (3, 6, 6, 1)), np.eye(10)[rng.integers(0, 10, 3)]
    cost, grads = conv_loops.gradients(params, X, Y)
    cost_v, grads_v = conv_im2col.gradients(params, X, Y)
    assert cost == pytest.approx(cost_v, rel=1e-12)
    for name, p in params.items():
        numeric = np.zeros_like(p)
        for index in np.ndindex(p.shape):
            for sign in (1, -1):
                shifted = {k: v.copy() for k, v in params.items()}
                shifted[name][index] += sign * 1e-6
                numeric[index] += sign * conv_loops.loss(shifted, X, Y) / 2e-6
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-5, atol=1e-8, err_msg=name)
        np.testing.assert_allclose(grads_v[name], grads[name], rtol=1e-12, atol=1e-14, err_msg=name)


def test_on_mnist_the_course_tie_rule_changes_the_conv_nets_bias_gradient() -> None:
    """Over MNIST's blank background a map is its filter's bias in every window: a tie, once ReLU passes it."""
    from tinygrad_edu import datasets

    rng = np.random.default_rng(0)
    params = conv_loops.init_params(rng, f=5, n_C=2)
    params["b1"] = np.full((1, 1, 1, 2), 0.1)  # above 0: the blank windows pass the ReLU, all four equal
    mnist = datasets.load_mnist()
    X, Y = mnist.train_x[:2].reshape(-1, 28, 28, 1), np.eye(10)[mnist.train_y[:2]]
    _, first = conv_im2col.gradients(params, X, Y)                 # PyTorch's rule, as the engine
    _, every = conv_im2col.gradients(params, X, Y, ties="every")   # the course's mask
    np.testing.assert_allclose(first["W2"], every["W2"])          # the dense layer is above the pool: the same
    np.testing.assert_allclose(first["W1"], every["W1"])          # the blank windows' pixels are 0: no change
    # the bias gradient counts each blank window's gradient once (PyTorch) or four times (the course)
    assert np.abs(every["b1"] - first["b1"]).max() > 0.5 * np.abs(first["b1"]).max()


# -- PyTorch --------------------------------------------------------------------------------------------------

def _torch() -> Any:
    return pytest.importorskip("torch")


def _check_against_torch(ours: Any, theirs: Any, inputs: tuple[np.ndarray, ...], seed: int) -> None:
    torch = _torch()
    mine = _leaves(*inputs)
    other = [torch.tensor(a, requires_grad=True) for a in inputs]
    out, expected = ours(*mine), theirs(*other)
    np.testing.assert_allclose(out.data, expected.detach().numpy(), rtol=TOL, atol=TOL)
    u = np.random.default_rng(seed).standard_normal(out.shape) + 0.5
    out.backward(gradient=u)
    expected.backward(torch.from_numpy(u))
    for i, (a, b) in enumerate(zip(mine, other)):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=TOL, atol=TOL, err_msg=f"input {i}")


@SETTINGS
@given(conv_geometry())
def test_conv2d_matches_torch(g: dict[str, Any]) -> None:
    functional = _torch().nn.functional
    _check_against_torch(_conv(g),
                         lambda *t: functional.conv2d(*t, stride=g["stride"], padding=g["padding"]),
                         _conv_inputs(g), g["seed"])


@SETTINGS
@given(pool_geometry(), st.booleans())
def test_pools_match_torch_ties_included(g: dict[str, Any], ties: bool) -> None:
    functional = _torch().nn.functional
    shape = (g["n"], g["c"]) + g["size"]
    rng = np.random.default_rng(g["seed"])
    x = rng.integers(-2, 3, shape).astype(float) if ties else rng.uniform(-1, 1, shape)
    stride = g["stride"] or g["kernel"]
    _check_against_torch(lambda t: max_pool2d(t, g["kernel"], g["stride"]),
                         lambda t: functional.max_pool2d(t, g["kernel"], stride), (x,), g["seed"])
    _check_against_torch(lambda t: avg_pool2d(t, g["kernel"], g["stride"]),
                         lambda t: functional.avg_pool2d(t, g["kernel"], stride), (x,), g["seed"])


@SETTINGS
@given(conv_geometry())
def test_im2col_and_col2im_match_torch_unfold_and_fold(g: dict[str, Any]) -> None:
    functional = _torch().nn.functional
    x = _conv_inputs(g)[0]
    geometry = {"kernel": g["kernel"], "stride": g["stride"], "padding": g["padding"]}
    torch_geometry = {"kernel_size": g["kernel"], "stride": g["stride"], "padding": g["padding"]}
    _check_against_torch(lambda t: apply_op(ops.Im2Col, t, **geometry),
                         lambda t: functional.unfold(t, **torch_geometry), (x,), g["seed"])
    cols = ops.im2col(x, **geometry)
    _check_against_torch(lambda t: apply_op(ops.Col2Im, t, size=g["size"], **geometry),
                         lambda t: functional.fold(t, output_size=g["size"], **torch_geometry), (cols,), g["seed"])


# -- bad input ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("x", "w", "b", "stride", "padding", "error", "words"), [
    ((2, 28, 28, 1), (20, 1, 5, 5), None, 1, 0, ValueError, ["channels-last", "x.transpose(0, 3, 1, 2)"]),
    ((2, 3, 8, 8), (5, 5, 3, 4), None, 1, 0, ValueError, ["(f, f, n_C_prev, n_C)", "W.transpose(3, 2, 0, 1)"]),
    ((2, 3, 8, 8), (4, 2, 3, 3), None, 1, 0, ValueError, ["3 channels", "expects 2"]),
    ((2, 1, 4, 4), (3, 1, 5, 5), None, 1, 0, ValueError, ["5x5 kernel", "larger", "4x4"]),
    ((2, 1, 4, 4), (3, 1, 7, 7), None, 1, 1, ValueError, ["7x7 kernel", "padded input, 6x6"]),
    ((2, 1, 8, 8), (3, 1, 3, 3), None, 0, 0, ValueError, ["stride must be at least 1"]),
    ((2, 1, 8, 8), (3, 1, 3, 3), None, 1, -1, ValueError, ["padding must be 0 or more"]),
    ((2, 1, 8, 8), (3, 9), None, 1, 0, ValueError, ["(out_channels, in_channels, kh, kw), got (3, 9)."]),
    ((2, 1, 8, 8), (3, 1, 3, 3), None, 1.5, 0, TypeError, ["stride", "1.5", "int"]),
    ((2, 1, 8, 8), (3, 1, 3, 3), None, (1, 2, 3), 0, TypeError, ["stride", "pair"]),
    ((2, 1, 8, 8), (3, 3, 3), None, 1, 0, ValueError, ["(out_channels, in_channels, kh, kw)", "reshape(1, 3, 3, 3)"]),
    ((2, 1, 8, 8), (3, 1, 3, 3), (1, 3), 1, 0, ValueError, ["bias", "(3,)"]),
    ((1, 8, 8), (3, 1, 3, 3), None, 1, 0, ValueError, ["(N, C, H, W)", "x.reshape(1, 1, 8, 8)"]),
    # a batch of grey images, or of flattened ones (MNIST's rows): the weight's in_channels tells which reshape
    ((4, 8, 6), (3, 1, 3, 3), None, 1, 0, ValueError, ["for a batch of grey images (N, H, W) pass "
                                                      "x.reshape(4, 1, 8, 6)."]),
    ((4, 64), (3, 1, 3, 3), None, 1, 0, ValueError, ["flattened 8x8 images", "x.reshape(4, 1, 8, 8)."]),
    ((4, 192), (3, 3, 3, 3), None, 1, 0, ValueError, ["flattened 8x8 images", "x.reshape(4, 3, 8, 8)."]),
    # the course's X: one flattened image per column (and 64 = 8 x 8 too: the larger images are the reading)
    ((784, 64), (3, 1, 3, 3), None, 1, 0, ValueError, ["for 64 flattened 28x28 images, one per column, pass "
                                                     "x.T.reshape(64, 1, 28, 28)."]),
    ((1, 64), (3, 1, 3, 3), None, 1, 0, ValueError, ["for 1 flattened 8x8 image, one per row, pass "
                                                   "x.reshape(1, 1, 8, 8)."]),
    ((8, 6, 3), (3, 3, 3, 3), None, 1, 0, ValueError, ["for one channels-last image (H, W, C) pass "
                                                      "x.transpose(2, 0, 1).reshape(1, 3, 8, 6)."]),
    ((8, 6, 1), (3, 1, 3, 3), None, 1, 0, ValueError, ["x.transpose(2, 0, 1).reshape(1, 1, 8, 6)."]),
    ((3, 8, 3), (3, 3, 3, 3), None, 1, 0, ValueError, ["for one image (C, H, W) pass x.reshape(1, 3, 8, 3)."]),
    ((784, 10), (3, 1, 3, 3), None, 1, 0, ValueError, ["one per column, pass x.T.reshape(10, 1, 28, 28)."]),
    ((64, 64), (3, 1, 3, 3), None, 1, 0, ValueError, ["one per row, pass x.reshape(64, 1, 8, 8)."]),
    ((4, 9), (3, 1, 3, 3), None, 1, 0, ValueError, ["flattened 3x3 images, one per row"]),      # the kernel fits
    ((4, 16), (3, 1, 5, 3), None, 1, 0, ValueError, ["for one grey image (H, W)"]),   # 4x4: a 5-row kernel does not fit
    ((3, 8, 6), (3, 3, 3, 3), None, 1, 0, ValueError, ["got (3, 8, 6); for one image (C, H, W) pass "
                                                      "x.reshape(1, 3, 8, 6)."]),
    ((4, 8, 8), (3, 3, 3, 3), None, 1, 0, ValueError, ["expects 3 channels", "(N, 3, H, W)"]),
    ((4, 63), (3, 1, 3, 3), None, 1, 0, ValueError, ["one grey image", "x.reshape(1, 1, 4, 63)."]),
    ((4, 63), (3, 3, 3, 3), None, 1, 0, ValueError, ["reshape it to (N, C, H, W)."]),
])
def test_conv2d_refuses_bad_input_with_the_sizes_and_the_fix(x: Any, w: Any, b: Any, stride: Any, padding: Any,
                                                              error: type[Exception], words: list[str]) -> None:
    with pytest.raises(error) as info:
        conv2d(Tensor(np.zeros(x)), Tensor(np.zeros(w)), None if b is None else Tensor(np.zeros(b)),
               stride=stride, padding=padding)
    assert str(info.value).startswith("conv2d: "), str(info.value)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_conv2d_defaults_to_stride_1_and_no_padding() -> None:
    assert conv_args.conv2d((1, 1, 4, 4), (1, 1, 3, 3)) == {"stride": (1, 1), "padding": (0, 0)}


@pytest.mark.parametrize(("shape", "kernel", "stride", "error", "words"), [
    ((1, 1, 3, 3), 4, None, ValueError, ["4x4 kernel", "larger", "3x3"]),
    ((1, 1, 4, 4), 2, 0, ValueError, ["stride", "at least 1"]),
    ((1, 1, 4, 4), 2.0, None, TypeError, ["kernel_size", "2.0"]),
    ((4, 4), 2, None, ValueError, ["(N, C, H, W)", "x.reshape(1, 1, 4, 4)"]),
    ((4, 6, 5), 2, None, ValueError, ["x.reshape(4, 1, 6, 5)", "one image (C, H, W), x.reshape(1, 4, 6, 5)"]),
])
def test_pools_refuse_bad_input(shape: Any, kernel: Any, stride: Any, error: type[Exception],
                                words: list[str]) -> None:
    for pool in (max_pool2d, avg_pool2d):
        with pytest.raises(error) as info:
            pool(Tensor(np.zeros(shape)), kernel, stride)
        for word in words:
            assert word in str(info.value), (word, str(info.value))


def test_flatten_refuses_axes_outside_the_shape() -> None:
    with pytest.raises(ValueError, match="start_dim=1 does not fit a tensor of shape"):
        flatten(Tensor(np.zeros(3)))
    with pytest.raises(ValueError, match="comes after end_dim"):
        flatten(Tensor(np.zeros((2, 3, 4))), 2, 1)


def test_docstring_examples_of_the_conv_modules_run() -> None:
    import doctest

    for module in (conv_args, conv_loops, conv_im2col):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.attempted > 0 and result.failed == 0, module.__name__
