from ingest.app import main

raise SystemExit(main())
