"""Kubernetes bundles for the whole pipeline: multi-worker training and the edge server (``deepclf deploy``).

::

    deepclf deploy training --out deploy/training --workers 3 --model basic --epochs 10
    deepclf deploy edge models --out deploy/edge
    deepclf deploy tfserving models --out deploy/tfserving      # = deepclf serving tfserving-config
    deepclf deploy validate deploy/                              # schemas (offline), references, kustomizations

The same in Python::

    from deepclf.deploy.training import TrainingOptions, render_training
    from deepclf.deploy.edge import EdgeOptions, render_edge
    from deepclf.deploy.tfserving import scan_models, write_bundle

    write_bundle("deploy/training", render_training(TrainingOptions(workers=3)))
    write_bundle("deploy/edge", render_edge(scan_models("models"), EdgeOptions()))

Manifests are written as text (``yamltext``: no YAML library, no TensorFlow); the pieces every bundle shares
(labels, security contexts, claims) are in ``common``. This package imports none of its submodules, so
``deepclf.deploy.tfserving`` can use ``common`` without an import cycle.
"""
