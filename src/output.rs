//! Writing to stdout and stderr without panicking when the reader has gone: `seer run x |
//! head -1` or `seer ps | head -1` close the pipe early, and `println!` panics on the
//! broken pipe (Rust ignores SIGPIPE). Here a closed stream ends that stream's output
//! quietly: later writes to it are dropped, and the command ends with its own exit code.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);

fn write_to(closed: &AtomicBool, mut w: impl Write, text: &str) -> bool {
    if closed.load(Ordering::Relaxed) {
        return false;
    }
    match w.write_all(text.as_bytes()).and_then(|()| w.flush()) {
        Ok(()) => true,
        Err(e) => {
            // A broken pipe (or any other failure to write) ends this stream's output.
            if e.kind() != io::ErrorKind::BrokenPipe {
                tracing::debug!("writing output failed: {e}");
            }
            closed.store(true, Ordering::Relaxed);
            false
        }
    }
}

/// Writes `text` to stdout as is; false once stdout is closed.
pub fn out(text: &str) -> bool {
    write_to(&STDOUT_CLOSED, io::stdout().lock(), text)
}

/// Writes `line` and a newline to stdout; false once stdout is closed.
pub fn out_line(line: &str) -> bool {
    write_to(&STDOUT_CLOSED, io::stdout().lock(), &format!("{line}\n"))
}

/// Writes `line` and a newline to stderr; false once stderr is closed.
pub fn err_line(line: &str) -> bool {
    write_to(&STDERR_CLOSED, io::stderr().lock(), &format!("{line}\n"))
}

/// Whether a write to stdout has failed (its reader is gone).
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}
