#!/usr/bin/env python
"""python run_talkingface.py --model=video_retalking --dataset=video-retalking"""
import sys

from talkingface.cli import main

if __name__ == "__main__":
    sys.exit(main())
