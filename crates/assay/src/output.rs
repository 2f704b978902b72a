//! Results a person reads go to stdout through [`outln!`]: a closed pipe (`assay qc ... | head`) ends the
//! process quietly with exit code 0, as ripgrep does, instead of panicking inside `println!`.

use std::io::Write as _;

/// Write one line to stdout; a closed pipe exits 0, any other write error exits 1 with the error.
pub fn line(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(err) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        exit_on(&err);
    }
}

/// The end of a process whose stdout failed.
fn exit_on(err: &std::io::Error) -> ! {
    if err.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: writing to stdout: {err}");
    std::process::exit(1);
}

/// `println!` through [`line`]: exits 0 on a closed pipe instead of panicking.
macro_rules! outln {
    () => {
        $crate::output::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}
