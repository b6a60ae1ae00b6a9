"""hwprofiles-fefet: ferroelectric FET multi-level cells for hwprofiles.

Two noise kinds and one profile, contributed through hwprofiles' plugin hooks:

``fefet_multilevel``
    weights written to a few polarisation states per device, with device-to-device
    variation largest at the intermediate (partially switched) states;
``fefet_retention``
    each state relaxes toward the middle of the memory window, linearly in log time;
``fefet-mlc-3bit``
    a profile using both, with its sources in ``references:``.

Install it next to hwprofiles and it is found through its entry point::

    >>> import hwprofiles
    >>> "fefet-mlc-3bit" in hwprofiles.list_profiles()
    True
"""

__version__ = "0.1.0"
