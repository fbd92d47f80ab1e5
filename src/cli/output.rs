//! stdout, as a pipe reader may close it: `aliyun-janitor run … | head` ends cleanly. A closed pipe (EPIPE) is
//! not an error of the run (what was released is in the logs and webhooks either way), so it is ignored; any
//! other write error is reported on stderr. Nothing here panics, unlike `println!` on a closed stdout.

use std::io::{self, Write};

/// Writes `text` to stdout and flushes it.
pub fn print(text: &str) {
    emit(|out| out.write_all(text.as_bytes()));
}

/// Runs `write` against a buffered, locked stdout and flushes it; reports a write error other than a closed pipe.
pub fn emit(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) {
    let mut out = io::BufWriter::new(io::stdout().lock());
    let written = write(&mut out).and_then(|()| out.flush());
    if let Err(e) = written {
        if e.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write the output: {e}");
        }
    }
}
