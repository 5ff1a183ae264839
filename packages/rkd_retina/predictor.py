"""Root shim of the original `predictor.py`: `python predictor.py` runs the demo from this folder."""

from rkd_retina.predictor import Predictor, main

__all__ = ["Predictor", "main"]

if __name__ == "__main__":
    main()
