"""
Callbacks and epochs: early stopping
====================================

Keras callbacks passed to :meth:`Trainer.fit <mnistkit.Trainer.fit>` see real
epochs, one per pass over the training data, with the epoch's training and
validation figures in ``logs``: ``EarlyStopping`` stops where it would in plain Keras.
Here softmax regression trains for up to 30 epochs and stops once the validation
loss has not improved for two.
"""

# %%
# A callback that reports each epoch
# ----------------------------------
import mnistkit.quiet

mnistkit.quiet.quiet_tensorflow()  # before Keras imports TensorFlow: no start-up lines

import keras
from keras.callbacks import EarlyStopping

import mnistkit
from mnistkit import plots


class EpochReport(keras.callbacks.Callback):
    """Print one line per epoch."""

    def on_epoch_end(self, epoch, logs=None):
        print(
            f"epoch {epoch + 1:2}: loss {logs['loss']:.4f}, "
            f"val_loss {logs['val_loss']:.4f}, "
            f"val_accuracy {logs['val_accuracy']:.4f}"
        )


# %%
# Train by epochs, with early stopping
# ------------------------------------
# An epoch is 550 steps of the recipe's 100 images. ``restore_best_weights`` puts
# back the weights of the best epoch when training stops.
mnist = mnistkit.load_dataset("mnist")
trainer = mnistkit.Trainer("softmax", seed=0)
stop = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
history = trainer.fit(
    mnist.train,
    epochs=30,
    validation_data=mnist.validation,
    callbacks=[stop, EpochReport()],
    verbose=0,
)
print(f"stopped after {len(history.epoch)} of 30 epochs")
print(trainer.evaluate(mnist.test))

# %%
# One point per epoch
# -------------------
# ``history.history`` holds one entry per epoch, as ``keras.Model.fit`` gives it.
plots.plot_learning_curves(history.history, "early-stopping-curves.png")
