"""``python -m fedmobile_actors.cli`` runs the ``fedmobile`` command."""

import sys

from fedmobile_actors.cli.main import main

sys.exit(main())
