from hw3lib.cli import main

raise SystemExit(main())
