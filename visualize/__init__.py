"""Pictures of the graphs tinygrad_edu records (installed as ``tinygrad_edu.visualize``)."""

__all__: list[str] = []
