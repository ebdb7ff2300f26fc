from mmuspec.cli import main

raise SystemExit(main())
