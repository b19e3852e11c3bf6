"""python -m rmcore.sample OUT_DIR [--seed N] [--prompts N]"""

from rmcore.sample.write import main

raise SystemExit(main())
