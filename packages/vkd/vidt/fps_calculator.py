"""Inference-speed benchmark, run from this folder as in the original (`vkd.vidt.fps_main`)."""

from vkd.vidt.fps_main import main

if __name__ == "__main__":
    main()
