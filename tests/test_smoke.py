import numpy as np

from tinygrad_edu import Tensor, gradcheck


def test_square_sum_gradient_is_twice_x():
    x = Tensor([1.0, -2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, -4.0, 6.0])


def test_visualize_is_installed_under_the_package():
    import tinygrad_edu.visualize  # noqa: F401  (the package-dir mapping works)


def test_gradcheck_matmul_sigmoid():
    rng = np.random.default_rng(0)
    a = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    b = Tensor(rng.standard_normal((4, 2)), requires_grad=True)
    assert gradcheck(lambda a, b: (a @ b).sigmoid(), [a, b])


def test_constants_keep_the_sign_of_zero():
    import warnings

    x = Tensor([1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert (x / 0.0).data[0] == np.inf and (x / -0.0).data[0] == -np.inf
