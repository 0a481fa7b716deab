"""berth: a container engine that does the job of Docker Engine."""

__version__ = "0.1.0"
