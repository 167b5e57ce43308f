//! `tideline generate-assets --out DIR` (hidden): what a package installs beside the binary,
//! generated from the command-line definition itself so it cannot drift from it — a man page
//! per command (`tideline.1`, `tideline-server.1`, …) and shell completions for bash, zsh and
//! fish. `scripts/package-deb` runs it.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

#[derive(Args, Debug)]
pub struct AssetsArgs {
    /// Directory to write into (created if missing): `man/` and `completions/` below it.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: AssetsArgs) -> anyhow::Result<()> {
    let cmd = crate::Cli::command();
    let man = args.out.join("man");
    std::fs::create_dir_all(&man).with_context(|| format!("create {}", man.display()))?;
    write_man(&cmd, "tideline", &man)?;
    let completions = args.out.join("completions");
    std::fs::create_dir_all(&completions).with_context(|| format!("create {}", completions.display()))?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut cmd = crate::Cli::command();
        let path = clap_complete::generate_to(shell, &mut cmd, "tideline", &completions)
            .with_context(|| format!("write {shell} completions"))?;
        println!("{}", path.display());
    }
    Ok(())
}

/// Writes `name.1` for `cmd` and, below it, `name-sub.1` for each visible subcommand.
fn write_man(cmd: &clap::Command, name: &str, dir: &Path) -> anyhow::Result<()> {
    // clap names are `&'static str` (without its `string` feature); this one-shot generator
    // leaks a few bytes per page rather than widen clap for every build.
    let cmd = cmd.clone().name(&*Box::leak(name.to_string().into_boxed_str())).version(crate::VERSION);
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page).context("render man page")?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, page).with_context(|| format!("write {}", path.display()))?;
    println!("{}", path.display());
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_man(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}
