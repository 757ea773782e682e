//! The `cxmetrics` binary: parse configuration, start telemetry, run the subcommand, then
//! flush the trace exporter.

use std::process::ExitCode;

use clap::Parser;
use cxmetrics::{
    commands,
    config::{Cli, Command, Settings},
    error,
    startup::{Application, shutdown_signal},
    telemetry,
};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let telemetry = cli
        .otlp
        .load()
        .and_then(|otlp| telemetry::init(cli.log_format, otlp.as_ref()));
    let telemetry = match telemetry {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("error: {}", error::error_chain(&error));
            return ExitCode::FAILURE;
        }
    };
    let code = match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Once, on stderr: the line an operator reads when the command fails.
            eprintln!("error: {}", error::error_chain(&error));
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown().await;
    code
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => {
            let app = Application::build(Settings::load(&args)?).await?;
            app.run_until_stopped(shutdown_signal()).await
        }
        Command::Migrate(db) => commands::migrate(&db).await,
        Command::Keys { command } => commands::keys(&command).await,
        Command::Rollups { command } => commands::rollups(&command).await,
    }
}
