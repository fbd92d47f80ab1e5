//! Dry run, then act: turns the plan's `Release` decisions into batched calls.
