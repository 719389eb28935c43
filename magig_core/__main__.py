import sys

from magig_core.cli import main

sys.exit(main())
