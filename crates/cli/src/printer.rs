//! The printer owns everything the CLI writes to the terminal besides command output:
//! progress bars, notes and warnings, honouring `-q`, `-v` and `--no-progress`.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Printer {
    quiet: bool,
    verbose: u8,
    progress: bool,
}

impl Printer {
    pub(crate) fn new(quiet: bool, verbose: u8, no_progress: bool) -> Self {
        let progress = !quiet && !no_progress && std::io::stderr().is_terminal();
        Self { quiet, verbose, progress }
    }

    /// A progress bar over `len` items; hidden when progress is off.
    pub(crate) fn bar(&self, len: u64, message: &str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(message.to_string());
        bar
    }

    /// A spinner for work of unknown length (e.g. all-vs-all TM-align); hidden when progress is off.
    pub(crate) fn spinner(&self, message: &str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new_spinner();
        bar.set_message(message.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    }

    /// A status line for the user (stderr), hidden with `-q`.
    #[allow(clippy::print_stderr)]
    pub(crate) fn note(&self, msg: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("{msg}");
        }
    }

    /// Detail shown only with `-v`.
    #[allow(clippy::print_stderr)]
    pub(crate) fn detail(&self, msg: impl std::fmt::Display) {
        if self.verbose > 0 {
            eprintln!("{msg}");
        }
    }

    /// A warning (stderr), hidden with `-q`.
    #[allow(clippy::print_stderr)]
    pub(crate) fn warn(&self, msg: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("warning: {msg}");
        }
    }

    pub(crate) fn verbose(&self) -> u8 {
        self.verbose
    }
}

/// Write command output to stdout. A closed pipe (`| head`) is not an error.
#[allow(clippy::print_stdout)]
pub(crate) fn out(text: impl std::fmt::Display) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}");
}
