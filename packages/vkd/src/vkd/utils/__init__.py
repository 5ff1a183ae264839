"""The original's `utils` package: optimizer, LR scheduler, tensor and CSV-logging helpers."""
