//! The run summary (the function's return value and the CLI's stdout) and per-instance decision logs.
