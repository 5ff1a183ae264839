"""Root shim of the original `train_Swin.py`, also saved as `train_swin.py`: trains per ./config/train.yaml.

Both names hold these same bytes, so on a case-insensitive checkout, where they collide, the file still works.
"""

from rkd_retina.train_Swin import main

if __name__ == "__main__":
    main()
