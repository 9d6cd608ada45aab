use clap::Parser;

fn main() {
    let cli = sprig_tools::cli::Cli::parse();
    if let Err(e) = sprig_tools::cli::main_with(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
