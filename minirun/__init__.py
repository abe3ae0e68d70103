"""minirun: a small, real container runtime for Linux, built to learn from."""

__version__ = "0.1.0"
