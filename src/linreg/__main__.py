import sys

from linreg.cli import main

sys.exit(main())
