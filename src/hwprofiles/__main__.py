"""``python -m hwprofiles``: the same as the ``hwprofiles`` command."""

from hwprofiles.cli import main

raise SystemExit(main())
