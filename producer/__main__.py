from producer.entry import main

raise SystemExit(main())
