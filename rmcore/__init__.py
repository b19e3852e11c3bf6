"""rmcore: reward models for RLHF from human preference labels."""

__version__ = "0.1.0"
