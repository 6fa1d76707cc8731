"""The version of hpsearch, in the bottom layer so that every package can name it."""

__version__ = "0.2.0"  # pyproject.toml's [project] version; tests/test_docs.py holds the two equal
