"""ViDT utilities (`vidt/util` of the original): boxes, batching and distributed helpers, the LR schedule."""
