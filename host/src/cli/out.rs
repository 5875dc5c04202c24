//! The commands' standard output. A reader that stops early (`| head -1`) closes the
//! pipe, and Rust ignores SIGPIPE, so the next write fails with `BrokenPipe`; `println!`
//! would panic on it (exit 101). Commands print with [`outln!`] and [`out!`] instead,
//! which return [`StdoutClosed`] then: the command stops where it is and `main` ends
//! it quietly with success, as Unix tools do. Other write errors (a full disk) stay
//! errors.

use std::fmt;
use std::io::{self, Write};

/// Nobody reads our output any more: not a failure, the reader had what it wanted.
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed")]
pub struct StdoutClosed;

/// Write `args` to stdout and flush, so a follower sees each piece as it comes.
pub fn write(args: fmt::Arguments<'_>, newline: bool) -> anyhow::Result<()> {
    let ending: &[u8] = if newline { b"\n" } else { b"" };
    let mut stdout = io::stdout().lock();
    let written = stdout
        .write_fmt(args)
        .and_then(|()| stdout.write_all(ending))
        .and_then(|()| stdout.flush());
    match written {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        Err(err) => Err(anyhow::Error::new(err).context("writing to standard output")),
    }
}

/// Whether `err` says stdout was closed (under any context added on the way up).
pub fn is_closed_stdout(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| cause.is::<StdoutClosed>())
}

/// `println!` that returns an error instead of panicking; use with `?`.
macro_rules! outln {
    () => { $crate::cli::out::write(format_args!(""), true) };
    ($($arg:tt)*) => { $crate::cli::out::write(format_args!($($arg)*), true) };
}

/// `print!` that returns an error instead of panicking; use with `?`.
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::out::write(format_args!($($arg)*), false) };
}

pub(crate) use {out, outln};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_stdout_is_recognised_under_context() {
        let err = anyhow::Error::new(StdoutClosed).context("printing the events");
        assert!(is_closed_stdout(&err));
        let other = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(!is_closed_stdout(&other), "only stdout's own pipe counts");
    }
}
