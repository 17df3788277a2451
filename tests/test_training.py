"""The Trainer: keep_prob, logging, epochs for callbacks, resume, divergence and bad input."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from mnistkit import (
    CheckpointError,
    InvalidArgumentError,
    KeepProbDropout,
    MnistkitError,
    Recipe,
    Trainer,
    TrainingDivergedError,
    build,
    get_keep_prob,
    load_model,
    read_metadata,
)
from mnistkit.checkpoints import read_state
from mnistkit.layers import drawn, parameter_count
from mnistkit.streams import batch_at, index_stream, stream_seed


def small_dropout_model(keep_prob: float = 0.5, seed: int = 7) -> keras.Model:
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(32, activation="relu")(x)
    x = KeepProbDropout(keep_prob, seed=seed, name="dropout")(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x), name="small_dropout")


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    from mnistkit import load_dataset

    train = load_dataset("mnist", validation_size=0).train
    return train.images[:400], train.labels[:400]


def weights_of(trainer: Trainer) -> list[np.ndarray]:
    return [np.array(w) for w in trainer.model.get_weights()]


def assert_interrupted_run_resumes_exactly(
    data, folder: Path, recipe: Recipe, *, seed: int, stop_at: int
) -> Trainer:
    """Train whole, then interrupted at ``stop_at`` and resumed; the weights must match.

    Returns the trainer of the whole run.
    """

    def trainer() -> Trainer:
        keras.utils.set_random_seed(seed)
        return Trainer(small_dropout_model(), recipe=recipe, seed=seed, deterministic=True)

    class Interrupt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: object = None) -> None:
            if int(self.model.optimizer.iterations.numpy()) == stop_at:
                raise KeyboardInterrupt

    whole = trainer()
    whole.fit(data, verbose=0)
    with pytest.raises(KeyboardInterrupt):
        trainer().fit(data, checkpoint_dir=folder, callbacks=[Interrupt()], verbose=0)
    resumed = trainer()
    resumed.fit(data, checkpoint_dir=folder, resume=True, verbose=0)
    for expected, actual in zip(weights_of(whole), weights_of(resumed), strict=True):
        np.testing.assert_array_equal(expected, actual)
    return whole


class KeepProbSpy(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[float | None] = []

    def on_train_batch_begin(self, batch: int, logs: object = None) -> None:
        self.seen.append(get_keep_prob(self.model))


def test_training_runs_at_the_given_keep_prob_and_the_model_keeps_it(data) -> None:
    model = small_dropout_model(keep_prob=0.5)
    trainer = Trainer(model, keep_prob=0.3, seed=1)
    spy = KeepProbSpy()
    trainer.fit(data, steps=4, batch_size=20, callbacks=[spy], verbose=0)
    assert spy.seen == [pytest.approx(0.3)] * 4
    assert get_keep_prob(model) == trainer.recipe.keep_prob == 0.3


def test_evaluate_and_predict_are_deterministic_after_training_with_dropout(data) -> None:
    trainer = Trainer(small_dropout_model(keep_prob=0.2), seed=2)
    trainer.fit(data, steps=5, batch_size=20, verbose=0)
    assert trainer.evaluate(data) == trainer.evaluate(data)
    first, second = trainer.predict(data[0][:50]), trainer.predict(data[0][:50])
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first.sum(axis=1), 1.0, rtol=1e-5)


def test_monte_carlo_predictions_spread_and_leave_the_model_as_it_was(data) -> None:
    trainer = Trainer(small_dropout_model(keep_prob=0.5), seed=3)
    trainer.fit(data, steps=3, batch_size=20, verbose=0)
    images = data[0][:20]
    before_weights = weights_of(trainer)
    before_draws = drawn(trainer.model.get_layer("dropout"))
    plain = trainer.predict(images)
    mean, std = trainer.predict(images, keep_prob=0.5, samples=8)
    assert mean.shape == std.shape == (20, 10)
    assert float(std.max()) > 0.0
    assert not np.allclose(mean, plain)
    np.testing.assert_array_equal(trainer.predict(images), plain)
    assert get_keep_prob(trainer.model) == 0.5
    assert drawn(trainer.model.get_layer("dropout")) == before_draws
    for old, new in zip(before_weights, weights_of(trainer), strict=True):
        np.testing.assert_array_equal(old, new)
    again = trainer.predict(images, keep_prob=0.5, samples=8)
    np.testing.assert_array_equal(again[0], mean)  # the same calls draw the same samples


def test_log_every_prints_the_tutorial_lines_with_dropout_off(data, capsys) -> None:
    trainer = Trainer(small_dropout_model(keep_prob=0.1), seed=5)
    history = trainer.fit(data, steps=12, batch_size=25, log_every=5)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step")]
    assert [line.split(",")[0] for line in lines] == ["step 0", "step 5", "step 10"]
    assert [row["step"] for row in history.log] == [0, 5, 10, 12]
    accuracies = [row["train_accuracy"] for row in history.log if "train_accuracy" in row]
    assert len(accuracies) == 3
    assert float(lines[0].rsplit(" ", 1)[1]) == pytest.approx(accuracies[0])
    assert "loss" not in history.log[0]  # no stretch ends at step 0
    assert all({"loss", "accuracy"} <= set(row) for row in history.log[1:])


def test_logged_accuracy_is_measured_on_the_current_batch_without_dropout(data) -> None:
    model = small_dropout_model(keep_prob=0.05)
    trainer = Trainer(model, seed=6)
    untrained = Trainer(keras.models.clone_model(model), seed=6)
    untrained.model.set_weights(model.get_weights())
    history = trainer.fit(data, steps=1, batch_size=40, log_every=1, verbose=0)
    assert trainer.metadata["data_seed"] == stream_seed(6)
    images, labels = batch_at(*data, batch_size=40, seed=stream_seed(6), step=0)
    expected = float(np.mean(untrained.predict(images).argmax(axis=1) == labels))
    assert history.log[0]["train_accuracy"] == pytest.approx(expected)


def test_interrupted_deterministic_run_resumes_to_identical_weights(data, tmp_path) -> None:
    def trainer() -> Trainer:
        keras.utils.set_random_seed(11)  # the same initial weights for each run
        return Trainer(small_dropout_model(), seed=11, deterministic=True)

    class Interrupt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: object = None) -> None:
            if int(self.model.optimizer.iterations.numpy()) == 7:
                raise KeyboardInterrupt

    settings = {"steps": 20, "batch_size": 30, "verbose": 0, "log_every": 6}
    whole = trainer()
    whole.fit(data, **settings)
    with pytest.raises(KeyboardInterrupt):
        trainer().fit(data, checkpoint_dir=tmp_path, callbacks=[Interrupt()], **settings)
    assert read_state(tmp_path)["step"] == 7
    resumed = trainer()
    resumed.fit(data, checkpoint_dir=tmp_path, resume=True, **settings)
    for expected, actual in zip(weights_of(whole), weights_of(resumed), strict=True):
        np.testing.assert_array_equal(expected, actual)
    assert int(resumed.model.optimizer.iterations.numpy()) == 20
    assert resumed.metadata["steps"] == 20  # the whole run's, not this process's 13


class CtrlC(keras.callbacks.Callback):
    """Sends this process SIGINT at the end of the given steps, as Ctrl-C would."""

    def __init__(self, *at: int) -> None:
        super().__init__()
        self.at = at
        self.finished: list[int] = []

    def on_train_batch_end(self, batch: int, logs: object = None) -> None:
        step = int(self.model.optimizer.iterations.numpy())
        for _ in range(self.at.count(step)):
            signal.raise_signal(signal.SIGINT)
        self.finished.append(step)


@pytest.mark.usefixtures("default_sigint")
def test_ctrl_c_lets_the_step_under_way_finish_and_saves_it(data, tmp_path) -> None:
    ctrl_c = CtrlC(5)
    with pytest.raises(KeyboardInterrupt):
        Trainer(small_dropout_model(), seed=14).fit(
            data, steps=20, batch_size=20, checkpoint_dir=tmp_path, callbacks=[ctrl_c], verbose=0
        )
    assert ctrl_c.finished == [1, 2, 3, 4, 5]  # step 5's callbacks ran to their end
    assert read_state(tmp_path)["step"] == 5
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.usefixtures("default_sigint")
def test_ctrl_c_in_the_last_step_still_interrupts(data, tmp_path) -> None:
    with pytest.raises(KeyboardInterrupt):
        Trainer(small_dropout_model(), seed=14).fit(
            data, steps=4, batch_size=20, checkpoint_dir=tmp_path, callbacks=[CtrlC(4)], verbose=0
        )
    assert read_state(tmp_path)["step"] == 4


@pytest.mark.usefixtures("default_sigint")
def test_a_second_ctrl_c_interrupts_at_once(data) -> None:
    ctrl_c = CtrlC(3, 3)
    with pytest.raises(KeyboardInterrupt):
        Trainer(small_dropout_model(), seed=14).fit(
            data, steps=20, batch_size=20, callbacks=[ctrl_c], verbose=0
        )
    assert ctrl_c.finished == [1, 2]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_resume_refuses_a_checkpoint_of_another_run(data, tmp_path) -> None:
    Trainer(small_dropout_model(), seed=12).fit(
        data, steps=2, batch_size=20, checkpoint_dir=tmp_path, verbose=0
    )
    with pytest.raises(CheckpointError, match="batch_size"):
        Trainer(small_dropout_model(), seed=12).fit(
            data, steps=2, batch_size=10, checkpoint_dir=tmp_path, resume=True, verbose=0
        )
    with pytest.raises(CheckpointError, match="already holds a checkpoint"):
        Trainer(small_dropout_model(), seed=12).fit(
            data, steps=2, batch_size=20, checkpoint_dir=tmp_path, verbose=0
        )


def test_resume_reports_missing_and_corrupt_checkpoints(data, tmp_path) -> None:
    with pytest.raises(CheckpointError, match="no checkpoint"):
        Trainer(small_dropout_model(), seed=13).fit(
            data, steps=2, checkpoint_dir=tmp_path, resume=True, verbose=0
        )
    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt"):
        Trainer(small_dropout_model(), seed=13).fit(
            data, steps=2, checkpoint_dir=tmp_path, resume=True, verbose=0
        )


ONE_HOT_LOSS = keras.losses.CategoricalCrossentropy(from_logits=True)


def nan_labelled(data: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The images, and one-hot labels whose first row is NaN: a loss that becomes NaN
    on the step that trains on example 0 (NaN pixels are refused before training)."""
    images, labels = data
    poisoned = np.eye(10, dtype=np.float32)[labels]
    poisoned[0] = np.nan
    return images, poisoned


def test_a_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(
    data, tmp_path
) -> None:
    images, poisoned = nan_labelled(data)
    batches = index_stream(len(images), batch_size=20, seed=stream_seed(14), start_step=0)
    first_bad = next(step for step, batch in enumerate(batches) if 0 in batch.numpy())
    assert first_bad > 0  # so that a good checkpoint exists before it
    trainer = Trainer("softmax", seed=14, loss=ONE_HOT_LOSS)
    with pytest.raises(TrainingDivergedError, match=f"at step {first_bad};") as caught:
        trainer.fit(
            (images, poisoned),
            steps=first_bad + 20,
            batch_size=20,
            checkpoint_dir=tmp_path,
            checkpoint_every=1,
            verbose=0,
        )
    assert isinstance(caught.value, FloatingPointError)
    assert f"last good checkpoint (step {first_bad})" in str(caught.value)
    assert read_state(tmp_path)["step"] == first_bad


def test_several_steps_per_call_name_the_steps_of_the_call_where_the_loss_became_nan(
    data,
) -> None:
    images, poisoned = nan_labelled(data)
    batches = index_stream(len(images), batch_size=20, seed=stream_seed(15), start_step=0)
    first_bad = next(step for step, batch in enumerate(batches) if 0 in batch.numpy())
    steps = 10 * (first_bad // 10 + 3)
    trainer = Trainer("softmax", seed=15, loss=ONE_HOT_LOSS)
    assert (
        trainer.plan((images, poisoned), steps=steps, batch_size=20).steps_per_call(
            parameters=parameter_count(trainer.model), batch_size=20, every_step=False
        )
        == 10
    )
    with pytest.raises(TrainingDivergedError, match=r"at one of steps (\d+) to (\d+);") as caught:
        trainer.fit((images, poisoned), steps=steps, batch_size=20, verbose=0)
    first, last = map(int, re.search(r"steps (\d+) to (\d+)", str(caught.value)).groups())
    assert (first, last) == (first_bad // 10 * 10, first_bad // 10 * 10 + 9)


class BatchWatcher(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.batches = 0

    def on_train_batch_end(self, batch: int, logs: object = None) -> None:
        self.batches += 1


def test_several_steps_per_call_train_as_single_steps_do(data) -> None:
    def trainer() -> Trainer:
        keras.utils.set_random_seed(16)
        return Trainer(small_dropout_model(), seed=16, deterministic=True)

    fast, watched, watcher = trainer(), trainer(), BatchWatcher()
    fast_history = fast.fit(data, steps=30, batch_size=20, verbose=0)
    watched_history = watched.fit(data, steps=30, batch_size=20, callbacks=[watcher], verbose=0)

    assert fast_history.params["steps_per_call"] == 10
    assert watched_history.params["steps_per_call"] == 1
    assert watcher.batches == 30  # a callback that watches batches sees every one
    for expected, actual in zip(weights_of(watched), weights_of(fast), strict=True):
        np.testing.assert_array_equal(expected, actual)
    # 14 batches: the last call of the evaluation runs fewer steps than the others
    assert fast.evaluate(data, batch_size=30) == watched.evaluate(data, batch_size=30)


def test_one_hot_and_integer_labels_train_the_same(data) -> None:
    images, labels = data
    one_hot = np.eye(10, dtype=np.float32)[labels]
    runs = []
    for targets in (labels, one_hot):
        keras.utils.set_random_seed(15)
        trainer = Trainer(small_dropout_model(), seed=15, deterministic=True)
        trainer.fit((images, targets), steps=3, batch_size=20, verbose=0)
        runs.append(weights_of(trainer))
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)


def test_flat_images_are_reshaped_for_the_model(data) -> None:
    images, labels = data
    trainer = Trainer("softmax", seed=16)
    flat = trainer.evaluate((images.reshape(-1, 784), labels))
    assert flat == trainer.evaluate((images, labels))
    assert trainer.predict(images[:3].reshape(3, 784)).shape == (3, 10)


def test_fit_by_epochs_counts_steps_per_pass(data) -> None:
    images, labels = data
    trainer = Trainer(small_dropout_model(), seed=17)
    history = trainer.fit((images[:100], labels[:100]), epochs=2, batch_size=30, verbose=0)
    assert history.epoch == [0, 1]
    assert int(trainer.model.optimizer.iterations.numpy()) == 8


def test_the_default_recipe_is_the_tutorials(data) -> None:
    trainer = Trainer("softmax", seed=18)
    trainer.fit(data, steps=1, verbose=0)
    assert isinstance(trainer.model.optimizer, keras.optimizers.SGD)
    assert float(trainer.model.optimizer.learning_rate.numpy()) == pytest.approx(0.5)
    assert trainer.metadata["batch_size"] == 100
    cnn = Trainer("deep_cnn", seed=18).recipe
    assert (cnn.optimizer, cnn.learning_rate, cnn.steps, cnn.batch_size, cnn.keep_prob) == (
        "adam",
        1e-4,
        20_000,
        50,
        0.5,
    )


def test_a_tf_data_dataset_with_one_hot_labels_trains(data) -> None:
    images, labels = data
    dataset = tf.data.Dataset.from_tensor_slices((images, np.eye(10)[labels])).batch(40)
    trainer = Trainer(small_dropout_model(), seed=19)
    trainer.fit(dataset, steps=3, verbose=0)
    assert int(trainer.model.optimizer.iterations.numpy()) == 3
    assert set(trainer.evaluate(dataset)) >= {"loss", "accuracy"}


def test_save_keeps_the_run_metadata_and_the_model(data, tmp_path) -> None:
    trainer = Trainer("softmax", seed=20)
    trainer.fit(data, steps=5, batch_size=40, verbose=0)
    path = trainer.save(tmp_path / "softmax.keras")
    metadata = read_metadata(path)
    assert metadata["seed"] == 20
    assert metadata["steps"] == 5
    assert metadata["recipe"]["optimizer"] == "sgd"
    assert (metadata["recipe"]["steps"], metadata["recipe"]["batch_size"]) == (5, 40)
    other = Trainer("softmax", seed=20)
    other.fit((data[0][::-1], data[1][::-1]), steps=5, batch_size=40, verbose=0)
    assert len(metadata["data_checksum"]) == 64
    assert metadata["data_checksum"] != other.metadata["data_checksum"]
    assert set(metadata["versions"]) >= {"mnistkit", "keras", "tensorflow", "numpy"}
    reloaded = Trainer(load_model(path), seed=20)
    np.testing.assert_allclose(reloaded.predict(data[0][:4]), trainer.predict(data[0][:4]))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"steps": 2, "epochs": 1}, "either `steps` or `epochs`"),
        ({"steps": 0}, "argument `steps`"),
        ({"steps": 1, "batch_size": -5}, "argument `batch_size`"),
        ({"steps": 1, "log_every": 0}, "argument `log_every`"),
        ({"steps": 1, "resume": True}, "checkpoint_dir"),
    ],
)
def test_bad_fit_settings_are_refused(data, settings, message) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        Trainer("softmax", seed=0).fit(data, **settings)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"keep_prob": 1.5},
            r"Invalid value for argument `keep_prob`. Expected a float in \(0, 1\]",
        ),
        ({"keep_prob": 0}, "argument `keep_prob`"),
        ({"optimizer": "adamm"}, "argument `optimizer`.*Received: optimizer='adamm'"),
        ({"learning_rate": -1.0}, "argument `learning_rate`"),
        ({"seed": -1}, "argument `seed`"),
    ],
)
def test_bad_trainer_settings_are_refused(settings, message) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        Trainer("softmax", **settings)


@pytest.mark.parametrize(
    ("images", "labels", "message"),
    [
        (np.zeros((4, 27, 27)), np.zeros(4, int), "Expected images shaped"),
        (np.zeros((4, 784)), np.array([0, 1, 2, 10]), r"Expected integers in \[0, 9\]"),
        (np.zeros((4, 784)), np.zeros((4, 3)), "one-hot labels shaped"),
        (np.zeros((4, 784)), np.zeros(5, int), "differ in number"),
    ],
)
def test_bad_data_is_refused_in_kerass_words(images, labels, message) -> None:
    trainer = Trainer("softmax", seed=0)
    with pytest.raises(InvalidArgumentError, match=message) as caught:
        trainer.fit((images, labels), steps=1)
    assert isinstance(caught.value, MnistkitError)
    assert isinstance(caught.value, ValueError)


def test_a_recipe_that_shifts_images_needs_a_model_that_takes_images(data) -> None:
    inputs = keras.Input((784,))
    flat_model = keras.Model(inputs, keras.layers.Dense(10)(inputs))
    trainer = Trainer(flat_model, recipe=Recipe(optimizer="sgd", steps=2, shift=1), seed=0)
    with pytest.raises(InvalidArgumentError, match="shifts of up to 1 pixels"):
        trainer.fit(data, verbose=0)


def test_a_recipe_that_shifts_images_trains_and_resumes_exactly(data, tmp_path) -> None:
    recipe = Recipe(optimizer="sgd", learning_rate=0.1, steps=6, batch_size=20, shift=2)

    assert_interrupted_run_resumes_exactly(data, tmp_path, recipe, seed=21, stop_at=3)


# ---------------------------------------------------------------- keep_prob has one owner


def test_a_model_built_at_a_keep_prob_trains_at_it_not_at_its_recipes(data) -> None:
    trainer = Trainer(build("deep_cnn", keep_prob=0.75, seed=1), seed=1)
    spy = KeepProbSpy()
    trainer.fit(data, steps=2, batch_size=10, callbacks=[spy], verbose=0)
    assert spy.seen == [pytest.approx(0.75)] * 2
    assert trainer.recipe.keep_prob == 0.75


def test_a_model_built_by_name_for_a_recipe_carries_its_keep_prob(data) -> None:
    trainer = Trainer("deep_cnn", recipe="fast", seed=1)
    spy = KeepProbSpy()
    trainer.fit(data, steps=2, batch_size=10, callbacks=[spy], verbose=0)
    assert spy.seen == [pytest.approx(0.75)] * 2
    explicit = Trainer(build("deep_cnn", recipe="fast"), keep_prob=0.6, seed=1)
    assert (explicit.recipe.keep_prob, get_keep_prob(explicit.model)) == (0.6, 0.6)


def test_keep_prob_for_a_model_without_dropout_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="has no KeepProbDropout layer"):
        Trainer("softmax", keep_prob=0.5)
    assert Trainer("softmax", seed=0).recipe.keep_prob is None


def test_a_saved_model_mc_predicts_at_the_keep_prob_it_trained_at_in_a_fresh_process(
    data, tmp_path
) -> None:
    trainer = Trainer("deep_cnn", recipe="fast", seed=2)
    trainer.fit(data, steps=2, batch_size=10, verbose=0)
    path = trainer.save(tmp_path / "fast.keras")
    script = f"""
import json, numpy as np
from mnistkit import Trainer, load_model, model_info
model = load_model({str(path)!r})
trainer = Trainer(model, seed=0)
images = np.asarray(json.loads({json.dumps(data[0][:6].tolist())!r}), np.float32)
by_default, _ = trainer.predict(images, samples=4)
at_075, _ = trainer.predict(images, samples=4, keep_prob=0.75)
at_050, _ = trainer.predict(images, samples=4, keep_prob=0.5)
print(json.dumps({{"recipe": model_info(model).recipe.name, "keep_prob": trainer.recipe.keep_prob,
    "same": bool(np.array_equal(by_default, at_075)),
    "differs": not np.allclose(by_default, at_050)}}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"recipe": "fast", "keep_prob": 0.75, "same": True, "differs": True}


# ---------------------------------------------------------------- Monte-Carlo dropout


def batch_norm_model() -> keras.Model:
    """A plugin-style model with batch normalization before its dropout."""
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(32)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("relu")(x)
    x = KeepProbDropout(0.5, seed=3, name="dropout")(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x))


def test_mc_dropout_leaves_batch_normalization_in_inference_mode(data) -> None:
    trainer = Trainer(batch_norm_model(), seed=4)
    trainer.fit(data, steps=5, batch_size=20, verbose=0)
    images = data[0][:8]
    plain = trainer.predict(images)
    mean, std = trainer.predict(images, keep_prob=1.0, samples=3)
    np.testing.assert_allclose(mean, plain, rtol=1e-6, atol=1e-7)
    assert float(std.max()) < 1e-6
    # One image's samples do not depend on the images batched with it.
    first, _ = trainer.predict(np.concatenate([images[:1], data[0][100:103]]), samples=5)
    second, _ = trainer.predict(np.concatenate([images[:1], data[0][200:203]]), samples=5)
    np.testing.assert_allclose(first[0], second[0], rtol=1e-6)


def test_mc_predict_needs_a_dropout_layer() -> None:
    with pytest.raises(InvalidArgumentError, match="no KeepProbDropout layer"):
        Trainer("softmax", seed=0).predict(np.zeros((1, 784), np.float32), samples=2)


# ---------------------------------------------------------------- epochs for callbacks


class EpochCounter(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.begun: list[int] = []
        self.ended: list[tuple[int, list[str]]] = []

    def on_epoch_begin(self, epoch: int, logs: object = None) -> None:
        self.begun.append(epoch)

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self.ended.append((epoch, sorted(logs or {})))


def test_callbacks_see_one_epoch_per_pass_with_validation_in_their_logs(data) -> None:
    images, labels = data
    counter = EpochCounter()
    history = Trainer("softmax", seed=5).fit(
        (images[:100], labels[:100]),
        epochs=3,
        batch_size=30,
        validation_data=(images[100:160], labels[100:160]),
        callbacks=[counter],
        verbose=0,
    )
    expected = ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert counter.begun == [0, 1, 2]
    assert counter.ended == [(0, expected), (1, expected), (2, expected)]
    assert history.epoch == [0, 1, 2]
    assert len(history.history["val_loss"]) == 3
    assert history.params["steps"] == 4  # ceil(100 / 30)


def test_a_run_by_steps_ends_its_last_epoch_where_it_stops(data) -> None:
    counter = EpochCounter()
    Trainer("softmax", seed=6).fit(data, steps=25, batch_size=40, callbacks=[counter], verbose=0)
    assert counter.begun == [0, 1, 2]  # 10 steps an epoch: 10, 10, then the last 5
    assert [epoch for epoch, _ in counter.ended] == [0, 1, 2]


def test_the_progress_bar_counts_the_steps_each_epoch_runs(data, capsys) -> None:
    Trainer("softmax", seed=6).fit(data, steps=25, batch_size=40, verbose=1)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)  # without colours
    shown = re.findall(r"(\d+)/(\d+) ", plain)
    assert {target for _, target in shown} == {"10", "5"}  # 10 steps an epoch, then 5
    assert ("5", "5") in shown


class Scripted(keras.callbacks.Callback):
    """Writes a scripted figure into each epoch's logs, for EarlyStopping to watch."""

    def __init__(self, values: list[float]) -> None:
        super().__init__()
        self.values = values

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        assert logs is not None
        logs["scripted"] = self.values[epoch]


def test_early_stopping_stops_at_the_epoch_plain_keras_stops_at(data) -> None:
    images, labels = data
    values = [5.0, 4.0, 3.0, 3.5, 3.6, 3.7, 1.0, 0.5]

    def stopper() -> keras.callbacks.EarlyStopping:
        return keras.callbacks.EarlyStopping(monitor="scripted", mode="min", patience=2)

    plain = build("softmax")
    plain.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    keras_stop = stopper()
    keras_history = plain.fit(
        images[:100], labels[:100], epochs=8, batch_size=25,
        callbacks=[Scripted(values), keras_stop], verbose=0,
    )  # fmt: skip
    ours_stop = stopper()
    trainer = Trainer("softmax", seed=7)
    history = trainer.fit(
        (images[:100], labels[:100]), epochs=8, batch_size=25,
        callbacks=[Scripted(values), ours_stop], verbose=0,
    )  # fmt: skip
    assert ours_stop.stopped_epoch == keras_stop.stopped_epoch == 4
    assert history.epoch == keras_history.epoch == [0, 1, 2, 3, 4]
    assert int(trainer.model.optimizer.iterations.numpy()) == 5 * 4  # no step past the stop


def test_a_run_resumed_inside_an_epoch_begins_with_the_rest_of_it(data, tmp_path) -> None:
    images, labels = data
    arrays = (images[:100], labels[:100])

    class StopAt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: object = None) -> None:
            if int(self.model.optimizer.iterations.numpy()) == 6:
                raise KeyboardInterrupt

    settings = {"epochs": 3, "batch_size": 25, "checkpoint_dir": tmp_path, "verbose": 0}
    with pytest.raises(KeyboardInterrupt):
        Trainer("softmax", seed=8).fit(arrays, callbacks=[StopAt()], **settings)
    counter = EpochCounter()
    history = Trainer("softmax", seed=8).fit(arrays, resume=True, callbacks=[counter], **settings)
    assert counter.begun == [1, 2]  # step 6 is in epoch 1 (4 steps an epoch)
    assert history.epoch == [1, 2]


def test_averaged_weights_are_swapped_in_once_at_the_end(data) -> None:
    class LastRaw(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: object = None) -> None:
            self.raw = [np.array(w) for w in self.model.get_weights()]

    def run(**settings: object) -> tuple[list[np.ndarray], list[np.ndarray]]:
        keras.utils.set_random_seed(9)
        optimizer = keras.optimizers.Adam(1e-2, use_ema=True, ema_momentum=0.9)
        trainer = Trainer(small_dropout_model(), optimizer=optimizer, seed=9, deterministic=True)
        watcher = LastRaw()
        trainer.fit(data, steps=20, batch_size=20, callbacks=[watcher], verbose=0, **settings)
        return weights_of(trainer), watcher.raw

    logged, raw = run(log_every=5, validation_data=data)
    plain, _ = run()
    assert any(not np.array_equal(a, b) for a, b in zip(logged, raw, strict=True))
    for a, b in zip(logged, plain, strict=True):  # logging does not cut the run in pieces
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- what a model carries


def test_model_info_survives_keras_saving_and_cloning(tmp_path) -> None:
    from mnistkit import model_info

    model = build("deep_cnn", recipe="fast", output="probabilities")
    path = tmp_path / "cnn.keras"
    model.save(path)
    for copy in (keras.saving.load_model(path), keras.models.clone_model(model)):
        info = model_info(copy)
        assert info is not None
        assert (info.name, info.output, info.recipe.name) == ("deep_cnn", "probabilities", "fast")
        assert get_keep_prob(copy) == 0.75


def test_a_recipe_is_checked_when_it_is_made() -> None:
    with pytest.raises(InvalidArgumentError, match="argument `batch_size`"):
        Recipe(optimizer="sgd", learning_rate=0.1, steps=10, batch_size=0)
    with pytest.raises(InvalidArgumentError, match="argument `keep_prob`"):
        Recipe(steps=10, keep_prob=7)
    with pytest.raises(InvalidArgumentError, match="argument `learning_rate`"):
        Recipe(steps=10, learning_rate=float("nan"))


def test_a_recipe_with_affine_moves_averaged_weights_and_smoothing_resumes_exactly(
    data, tmp_path
) -> None:
    recipe = Recipe(
        optimizer="adam", learning_rate=1e-3, steps=8, batch_size=20, shift=2,
        rotation=10.0, scale=0.1, label_smoothing=0.1, ema=0.9,
    )  # fmt: skip

    # with weight averaging, the averages are restored and finished too
    whole = assert_interrupted_run_resumes_exactly(data, tmp_path, recipe, seed=22, stop_at=5)
    assert "label smoothing 0.1" in whole.recipe.describe()
    loss = whole.evaluate(data)["loss"]
    assert loss == pytest.approx(Trainer(whole.model, seed=0).evaluate(data)["loss"], rel=1e-5)


def test_averaged_weights_come_in_once_when_a_run_takes_several_fits(data, tmp_path) -> None:
    # 30 steps of 20 over 400 images: an epoch and a half, so the run takes two `fit`
    # calls (and the resumed one too), and the averages must not come in between.
    recipe = Recipe(optimizer="adam", learning_rate=1e-3, steps=30, batch_size=20, ema=0.9)
    whole = assert_interrupted_run_resumes_exactly(data, tmp_path, recipe, seed=23, stop_at=5)
    assert whole.plan(data).fits() == [(0, 0, 1, 20), (20, 1, 2, 10)]


def test_a_run_by_steps_shows_its_steps_as_the_tutorial_counts_them(data, capsys) -> None:
    Trainer("softmax", seed=0).fit(data, steps=20, batch_size=20)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines] == [f"step {n}" for n in range(0, 20, 2)]
    assert all(re.fullmatch(r"step \d+, training accuracy \d\.\d{4}", line) for line in lines)
