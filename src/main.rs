fn main() -> std::process::ExitCode {
    quiet_mesa();
    match regimes::cli::main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // The reader of stdout went away (`regimes theory | head -1`): stop quietly, with the
        // status a shell gives a program a closed pipe stopped.
        Err(e) if regimes::report::console::is_closed_stdout(&e) => {
            std::process::ExitCode::from(regimes::report::console::CLOSED_PIPE_STATUS)
        }
        Err(e) => {
            regimes::note!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Mesa's Vulkan drivers (lavapipe among them) complain on every adapter enumeration when
/// XDG_RUNTIME_DIR is unset, as on servers and in CI; give them the temp dir instead.
fn quiet_mesa() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        // SAFETY: called first thing in main, before any other thread exists.
        unsafe { std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir()) };
    }
}
