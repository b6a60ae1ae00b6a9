"""The version of hwprofiles: written here only (pyproject.toml reads it)."""

__version__ = "0.2.0"
"""The installed version of hwprofiles (also ``hwprofiles --version``)."""
