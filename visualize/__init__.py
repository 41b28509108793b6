"""Pictures of the graphs tinygrad_edu records (installed as ``tinygrad_edu.visualize``).

* ``to_dot`` / ``draw`` / ``layout_svg`` / ``to_text``: the computation graph, as DOT text, a rendered picture
  (Graphviz when installed, else a built-in layout), an SVG from the built-in layout, or a terminal tree;
* ``stepthrough``: one HTML page that walks the backward pass node by node (``backprop_steps`` gives the
  same steps as Python data);
* ``plot_history``, ``plot_weights``, ``plot_filters``, ``layer_health``, ``health_report``, ``plot_health``:
  training as plots and numbers (matplotlib, the ``plot`` extra).

The engine never imports this package.
"""

from .graph import GRAD_PENDING_NOTE, to_dot, to_text
from .layout import layout_svg
from .render import SvgPicture, draw
from .stepthrough import StepthroughPage, backprop_steps, stepthrough
from .training import PngPicture, health_report, layer_health, plot_filters, plot_health, plot_history, plot_weights

__all__ = [
    "to_dot", "to_text", "draw", "layout_svg", "SvgPicture", "GRAD_PENDING_NOTE",
    "stepthrough", "backprop_steps", "StepthroughPage",
    "plot_history", "plot_weights", "plot_filters", "layer_health", "health_report", "plot_health", "PngPicture",
]
