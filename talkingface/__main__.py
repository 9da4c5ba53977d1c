import sys

from talkingface.cli import module_main

sys.exit(module_main())
