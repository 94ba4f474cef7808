from seqtext.cli import main

raise SystemExit(main())
