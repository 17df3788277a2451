"""The plugin's data loader, declared in the ``mnistkit.datasets`` entry-point group."""

from __future__ import annotations

from mnistkit import Datasets, load_dataset


def mnist_small(
    *,
    one_hot: bool = False,
    validation_size: int = 100,
    flatten: bool = False,
    seed: int | None = None,
) -> Datasets:
    """The first 1,000 training and 200 test images of MNIST, for quick experiments.

    Args:
        one_hot: Encode labels as one-hot float32 (N, 10) instead of integers (N,).
        validation_size: How many of the 1,000 training images to hold out.
        flatten: Shape images (N, 784) instead of (N, 28, 28, 1).
        seed: Seed of the ``next_batch`` shuffling.

    Returns:
        The three splits, images float32 in [0, 1].

    Example:
        >>> data = mnist_small()
        >>> data.train.num_examples, data.validation.num_examples, data.test.num_examples
        (900, 100, 200)
    """
    x_train, y_train, x_test, y_test = load_dataset("mnist").raw
    # Copies, so that the full arrays they are sliced from can be freed.
    return Datasets.from_arrays(
        x_train[:1000].copy(),
        y_train[:1000].copy(),
        x_test[:200].copy(),
        y_test[:200].copy(),
        one_hot=one_hot,
        validation_size=validation_size,
        flatten=flatten,
        seed=seed,
        source="the first 1,000 training and 200 test images of the embedded MNIST",
    )
