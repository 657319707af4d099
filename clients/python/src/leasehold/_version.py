"""The client's version: the version of the Leasehold server it was made with."""

__version__ = "0.1.0"
