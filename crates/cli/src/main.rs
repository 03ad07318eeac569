//! The `protforge` binary.
//!
//! Exit codes: 0 success, 1 error (one line on stderr naming the file and the problem),
//! 2 command-line usage error (from clap).

mod cli;
mod commands;
mod printer;

use clap::Parser;
use cli::{Cli, Command, DataCommand, EvalCommand, TokenizeCommand, TrainCommand};
use printer::Printer;
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    install_panic_hook();
    let cli = Cli::parse();
    let printer = Printer::new(cli.global.quiet, cli.global.verbose, cli.global.no_progress);
    if let Some(n) = cli.global.threads
        && let Err(e) = rayon::ThreadPoolBuilder::new().num_threads(n.max(1)).build_global() {
            printer.warn(format!("--threads {n} ignored: {e}"));
        }
    match run(&cli, &printer) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(&err);
            ExitCode::from(1)
        }
    }
}

fn run(cli: &Cli, printer: &Printer) -> anyhow::Result<()> {
    let json = cli.global.json;
    if let Err(e) = cli.global.device.parse::<protforge_nn::DeviceSpec>() {
        anyhow::bail!(e);
    }
    match &cli.command {
        Command::Generate(args) => commands::generate::run(args, &cli.global, printer),
        Command::Scaffold(args) => commands::scaffold::run(args, &cli.global, printer),
        Command::Rollout(args) => commands::rollout::run(args, &cli.global, printer),
        Command::Tokenize(TokenizeCommand::Encode(args)) => commands::tokenize::encode(args, &cli.global, printer),
        Command::Tokenize(TokenizeCommand::Decode(args)) => commands::tokenize::decode(args, &cli.global, printer),
        Command::Assemble(args) => commands::assemble::run(args, &cli.global, printer),
        Command::Train(TrainCommand::Par(args)) => commands::train::par(args, &cli.global, printer),
        Command::Train(TrainCommand::Starmd(args)) => commands::train::starmd(args, &cli.global, printer),
        Command::Train(TrainCommand::Tokenizer(args)) => commands::train::tokenizer(args, &cli.global, printer),
        Command::Train(TrainCommand::Weaver(args)) => commands::train::weaver(args, &cli.global, printer),
        Command::Train(TrainCommand::WeaverDpo(args)) => commands::train::weaver_dpo(args, &cli.global, printer),
        Command::Eval(EvalCommand::Trajectory(args)) => commands::eval::trajectory_cmd(args, json, printer),
        Command::Inspect(args) => commands::inspect::run(args, json, printer),
        Command::Eval(EvalCommand::Backbones(args)) => commands::eval::backbones_cmd(args, json, printer),
        Command::Eval(EvalCommand::Tm(args)) => commands::eval::tm_cmd(args, json),
        Command::Eval(EvalCommand::Ss(args)) => commands::eval::ss_cmd(args, json),
        Command::Data(DataCommand::Build(args)) => commands::data::build_cmd(args, json, printer),
    }
}

/// One line: the error and its causes joined by ": ". No backtrace.
#[allow(clippy::print_stderr)]
fn report(err: &anyhow::Error) {
    let mut line = String::from("error: ");
    let mut first = true;
    for cause in err.chain() {
        let text = cause.to_string();
        if !first {
            if line.contains(&text) {
                continue;
            }
            line.push_str(": ");
        }
        line.push_str(&text);
        first = false;
    }
    eprintln!("{}", line.replace('\n', " "));
}

/// A panic is a bug; tell the user in one line instead of a backtrace.
#[allow(clippy::print_stderr)]
fn install_panic_hook() {
    if std::env::var_os("RUST_BACKTRACE").is_some() {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        let location = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("error: internal error (a bug in protforge, please report it): {msg}{location}");
    }));
}
