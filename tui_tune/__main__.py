from tui_tune.cli import main

raise SystemExit(main())
