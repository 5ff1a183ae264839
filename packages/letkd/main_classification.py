"""The original entry script at the package root: the sacred experiment ``classification_distillation``.

``python main_classification.py [print_config|help|...] [-F dir] with config=<dotted config name> key=value ...``;
see `letkd.main_classification` for the modes and options.
"""

from letkd.main_classification import main

if __name__ == "__main__":
    main()
