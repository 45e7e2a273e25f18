"""Datasets: find (or download and verify) the flowers photos, split them like the tutorial, check them.

TF-free except ``deepclf.data.loader`` (the tf.data pipeline)::

    from deepclf.data import resolve_dataset, split_files, check_folder
    root = resolve_dataset(None)                      # --data / DEEPCLF_DATA, Keras cache, then download
    paths, labels, classes = split_files(root, "validation")
"""

from deepclf.data.check import CheckReport, check_folder
from deepclf.data.discover import FLOWERS_SHA256, FLOWERS_URL, resolve_dataset
from deepclf.data.split import index_folder, split_files

__all__ = [
    "FLOWERS_SHA256",
    "FLOWERS_URL",
    "CheckReport",
    "check_folder",
    "index_folder",
    "resolve_dataset",
    "split_files",
]
