"""Drop-in replacements for TensorFlow 1 APIs that the MNIST tutorials used."""
