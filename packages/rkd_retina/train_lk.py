"""Root shim of the original `train_LK.py`, also saved as `train_lk.py`: trains per ./config/train.yaml.

Both names hold these same bytes, so on a case-insensitive checkout, where they collide, the file still works.
"""

from rkd_retina.train_LK import main

if __name__ == "__main__":
    main()
