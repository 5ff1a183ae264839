"""Training algorithms (the original `distillation.algorithms`): the `Algorithm` engine and the classifiers."""
