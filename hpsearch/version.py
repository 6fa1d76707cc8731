"""The version of hpsearch, in the bottom layer so that every package can name it."""

__version__ = "0.1.0"
