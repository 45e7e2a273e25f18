"""Label-smoothed cross-entropy on integer labels (Keras' sparse loss has no ``label_smoothing``).

The pipeline keeps integer labels (the confusion matrix, the plots and every other model read them), and the loss
makes the smoothed one-hot targets itself: the true class gets ``1 - smoothing + smoothing / C``, every other class
``smoothing / C``. Registered with Keras, so a saved model compiles again on loading::

    model.compile(optimizer="adam", loss=SmoothedSparseCrossentropy(0.1), metrics=["accuracy"])
"""

from __future__ import annotations

from typing import Any

from deepclf.errors import require_tensorflow

tf = require_tensorflow("the label-smoothed loss")
import keras  # noqa: E402 - after the check that TensorFlow (which brings Keras 3) is installed


@keras.saving.register_keras_serializable(package="deepclf")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Categorical cross-entropy on logits, integer labels, label smoothing ``smoothing`` (0 <= smoothing < 1)."""

    def __init__(self, smoothing: float = 0.1, name: str = "smoothed_sparse_crossentropy", **kwargs: Any) -> None:
        if not 0 <= smoothing < 1:
            raise ValueError(f"label smoothing must be in [0, 1), got {smoothing}")
        super().__init__(name=name, **kwargs)
        self.smoothing = float(smoothing)

    def call(self, y_true, y_pred):
        classes = tf.shape(y_pred)[-1]
        one_hot = tf.one_hot(tf.cast(tf.reshape(y_true, [-1]), tf.int32), classes, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(one_hot, y_pred, from_logits=True, label_smoothing=self.smoothing)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "smoothing": self.smoothing}
