"""rmcore: reward models for RLHF from human preference labels."""

__version__ = "0.2.0"
