"""Broken test devices: one clashes with a built-in kind, one needs a vendor SDK that is missing."""
