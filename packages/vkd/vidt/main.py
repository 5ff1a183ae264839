"""Entry script of the detection part, run from this folder as in the original (`vkd.vidt.main`)."""

from vkd.vidt.main import main

if __name__ == "__main__":
    main()
