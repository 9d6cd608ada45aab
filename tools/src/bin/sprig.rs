use clap::Parser;

fn main() {
    // A closed pipe (`sprig inspect m.sprig | head`) ends the process quietly, as for other Unix
    // tools, instead of a panic in `println!`.
    #[cfg(unix)]
    // SAFETY: restores the default disposition of SIGPIPE before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = sprig_tools::cli::Cli::parse();
    if let Err(e) = sprig_tools::cli::main_with(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
