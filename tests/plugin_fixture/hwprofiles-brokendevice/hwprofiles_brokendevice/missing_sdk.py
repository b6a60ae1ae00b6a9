"""Imports a vendor SDK that is not installed."""

import hwprofiles_vendor_sdk_not_installed  # noqa: F401
