//! The REPL's `:` commands.

use std::path::PathBuf;

use super::{Flow, Repl, show};
use crate::script::reference::{self, SECTIONS};

const HELP: &str = "\
Commands:
  :help            this text and the API's function names
  :help NAME       signature and doc of a function, method or property
                   (`exec`, `Sandbox.exec`, `Sandbox::from_id`, or a fn you defined)
  :load FILE       run a script in the REPL's state (its variables, fns, imports stay)
  :reload          run the last loaded file again
  :reset           forget variables, fns and imports; end the sandboxes started here
  :sandboxes       the live sandboxes started in this REPL
  :quit            end the sandboxes started here (not detached ones) and quit
Keys:
  Enter            run the entry; with an open bracket, string or comment, a new line
  Tab              complete functions, variables, `x.` methods, `module::` members
  Up/Down, Ctrl-R  history (kept across sessions); a dimmed hint comes from history
  Ctrl-C           clear the line; while an entry runs, cancel it (sandboxes are kept)
  Ctrl-D           quit, like :quit
`seer docs` prints the whole API as Markdown.";

pub fn run(repl: &mut Repl, input: &str) -> Flow {
    let (cmd, arg) = match input.split_once(char::is_whitespace) {
        Some((c, a)) => (c, a.trim()),
        None => (input, ""),
    };
    match cmd {
        ":help" | ":h" | ":?" => {
            if arg.is_empty() {
                println!("{HELP}");
                print_index(repl);
            } else {
                help(repl, arg);
            }
        }
        ":load" | ":l" => {
            if arg.is_empty() {
                eprintln!("usage: :load FILE");
            } else {
                load(repl, PathBuf::from(arg));
            }
        }
        ":reload" | ":r" => match repl.last_load() {
            Some(p) => load(repl, p),
            None => eprintln!("nothing loaded yet: use :load FILE first"),
        },
        ":reset" => {
            repl.reset();
            println!("state cleared");
        }
        ":sandboxes" | ":sb" => sandboxes(repl),
        ":quit" | ":q" | ":exit" => return Flow::Quit,
        other => eprintln!("unknown command {other}: :help lists the commands"),
    }
    Flow::Continue
}

fn load(repl: &mut Repl, path: PathBuf) {
    match repl.load(&path) {
        Ok(v) => {
            if let Some(text) = show::show(&v, &|d| repl.describe(d)) {
                println!("{text}");
            }
            println!("loaded {}", path.display());
        }
        Err(msg) => eprintln!("{msg}"),
    }
}

fn sandboxes(repl: &Repl) {
    let owned: Vec<_> = repl
        .host
        .owned
        .lock()
        .map(|v| v.clone())
        .unwrap_or_default();
    let live: Vec<_> = owned.iter().filter(|s| !s.is_terminated()).collect();
    if live.is_empty() {
        println!("no live sandboxes started in this REPL");
        return;
    }
    for sb in live {
        let info = sb.info();
        println!(
            "{}  {}{}  {}",
            info.id,
            info.backend,
            if sb.is_detached() { "  detached" } else { "" },
            info.workspace.display()
        );
    }
}

fn print_index(repl: &Repl) {
    let api: Vec<_> = reference::api(repl.engine(), false);
    for section in SECTIONS {
        let mut names: Vec<String> = api
            .iter()
            .filter(|f| f.section() == *section)
            .map(|f| f.key())
            .collect();
        names.dedup();
        if !names.is_empty() {
            println!("{section}: {}", names.join(", "));
        }
    }
    let mine: Vec<String> = repl.script_fns().into_iter().map(|f| f.0).collect();
    if !mine.is_empty() {
        println!("Your functions: {}", mine.join(", "));
    }
}

fn help(repl: &Repl, name: &str) {
    let mut found = false;
    let mut last_doc: Option<&str> = None;
    for f in repl.api() {
        if f.name != name && f.key() != name {
            continue;
        }
        let doc = f.doc.as_deref();
        if found && doc != last_doc {
            println!();
        }
        println!("{}", f.signature());
        if doc != last_doc
            && let Some(d) = doc
        {
            for line in d.lines() {
                println!("{}", format!("    {line}").trim_end());
            }
        }
        last_doc = doc;
        found = true;
    }
    for (fname, params, comments) in repl.script_fns() {
        if fname != name {
            continue;
        }
        println!("fn {fname}({})  (defined in this REPL)", params.join(", "));
        for c in comments {
            println!("    {}", c.trim_start_matches('/').trim());
        }
        found = true;
    }
    if !found {
        eprintln!("no function, method or property named `{name}`");
    }
}
