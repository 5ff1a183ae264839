"""VkD's object-detection part (`vidt/` of the original): ViDT Swin-nano/tiny students distilled from a ViDT teacher.

Layout as in the original: `methods` (Swin with RAM, the detector and its losses), `ops` (multi-scale deformable
attention), `datasets`, `util`, `engine`, `arguments` and `main`.
"""
