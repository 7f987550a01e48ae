import sys

from mailstack.cli.main import main

sys.exit(main())
