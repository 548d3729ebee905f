import sys

from perpixel.cli import main

sys.exit(main())
