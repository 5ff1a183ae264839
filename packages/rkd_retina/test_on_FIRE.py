"""Root shim of the original `test_on_FIRE.py`: `python test_on_FIRE.py` evaluates on `./data/FIRE` from here."""

from rkd_retina.test_on_FIRE import main

if __name__ == "__main__":
    main()
