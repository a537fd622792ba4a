"""Pipeline steps: one module per step, each with `build_parser()` (the step's flags, its single
source of truth) and `main(argv)`. The executables in `bin/` and the local runner both call these."""

STEPS = ("validate", "bulk_prepare", "bulk_pretrain", "cluster", "transfer", "explain", "evaluate", "screen_prepare",
         "screen_pretrain", "screen")
