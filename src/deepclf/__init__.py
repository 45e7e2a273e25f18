"""deepclf: train the TensorFlow flowers CNNs, convert them, serve them at the edge, call them, benchmark them.

The top-level package is TF-free: importing ``deepclf`` (and ``deepclf.preprocessing``, ``deepclf.manifest``,
``deepclf.protocol``, ``deepclf.clients``, the LiteRT part of ``deepclf.runtime``, ``deepclf.serving``) never
imports TensorFlow. Only ``deepclf.train``, ``deepclf.convert`` and the TF runners do.
"""

__version__ = "0.1.0"
