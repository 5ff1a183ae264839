"""Root shim of the original `train_base.py`: `python train_base.py` trains with ./config/train.yaml here."""

from rkd_retina.train_base import main

if __name__ == "__main__":
    main()
