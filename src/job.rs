//! One run, wired end to end: trigger + policy → listing → plan → dry run → release → summary.
