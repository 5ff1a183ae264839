"""ViDT with the neck-free deformable decoder (method `vidt`): detector, decoder, matcher, criterion, post-processor."""
