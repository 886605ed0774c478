import sys

from py_nodes.cli import main

sys.exit(main())
