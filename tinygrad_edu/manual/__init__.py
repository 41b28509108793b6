"""The tutorials' networks, hand-derived in plain numpy: the references the engine is checked against.

One module per tutorial (the files of the shared ``seeds/`` folder), each following its tutorial's own equations
and layout, with no engine imports. Every module has ``init_params`` (randomness from an explicit Generator or seed)
and ``gradients(params, x, y) -> (loss, {name: dL/dparam})``, the true gradient, sign included.

- ``mnist3``  file 000: 784-64-64-10 sigmoid net, no biases, cross-entropy on the sigmoid outputs
- ``nielsen`` file 001: Nielsen-style ``Network``, quadratic cost, per-sample and matrix mini-batch SGD
- ``xor``     file 002: 3-4-1 XOR net, sum of squared errors (and the tutorial's ``= d_weights + 1`` typo)
- ``lnet``    file 003: L-layer net in a params dict, cross-entropy
- ``logreg``  file 004: logistic regression on the cat images

The next chapters, each module one source (modules without a seed number have no seed tutorial of their own):

- ``network2``          Nielsen's chapter 3: cross-entropy, L2 weight decay, the 1/sqrt(n_in) start
- ``initialization``    the course's zeros / large random / He starts on the circles
- ``regularization``    the course's L2 and inverted dropout on its three-layer ReLU net
- ``gradient_checking`` the course's two-sided differences, with its planted mistakes
- ``optimization``      the course's mini-batches, momentum, Adam and learning-rate decay on the moons
- ``batchnorm``         batch normalisation (Ioffe and Szegedy, 2015; CS231n's assignment 2): the staged and
  the closed-form backward, the usual slips, and a batch-norm MLP on MNIST
- ``conv_loops``        the course's "Convolution model, step by step": conv and pooling, forward and backward, in
  loops (and its network for the compare table)
- ``conv_im2col``       the same, vectorised with im2col / col2im

>>> from tinygrad_edu import manual
>>> sorted(manual.__all__)  # doctest: +NORMALIZE_WHITESPACE
['batchnorm', 'conv_im2col', 'conv_loops', 'gradient_checking', 'initialization', 'lnet', 'logreg', 'mnist3',
 'network2', 'nielsen', 'optimization', 'regularization', 'xor']
"""

from . import (batchnorm, conv_im2col, conv_loops, gradient_checking, initialization, lnet, logreg, mnist3, network2,
               nielsen, optimization, regularization, xor)

__all__ = ["mnist3", "nielsen", "xor", "lnet", "logreg", "network2", "initialization", "regularization",
           "gradient_checking", "optimization", "batchnorm", "conv_loops", "conv_im2col"]
