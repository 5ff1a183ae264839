"""Data loaders of the original (`basic_dataloaders`)."""
