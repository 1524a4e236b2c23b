import sys

from neuroprop.cli import main

sys.exit(main())
