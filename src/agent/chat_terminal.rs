//! The terminal side of `run_agent_interactive`: the user's messages come from a
//! rustyline prompt (history kept in seer's state dir); while the agent works, Esc
//! (read from the terminal in non-canonical mode by a watcher thread) or Ctrl-C (the
//! runner's signal handler, through the host's interrupt slot) cancels the current turn
//! only. Ctrl-D or `/exit` at the prompt ends the chat.

use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sys::termios::{self, LocalFlags, SetArg, SpecialCharacterIndices};
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;
use tokio_util::sync::CancellationToken;

use super::run::ChatInput;

/// Where Ctrl-C looks for a turn to interrupt before stopping the whole script.
pub type InterruptSlot = Arc<Mutex<Option<CancellationToken>>>;

/// Reads messages at a `you> ` prompt.
pub struct TerminalInput {
    editor: DefaultEditor,
    history: Option<PathBuf>,
    slot: InterruptSlot,
    esc: Option<EscWatcher>,
    /// What the user typed while the agent worked: the next prompt starts with it.
    typed_ahead: String,
}

impl TerminalInput {
    pub fn new(history: Option<PathBuf>, slot: InterruptSlot) -> anyhow::Result<Self> {
        let mut editor = DefaultEditor::new()?;
        if let Some(h) = &history {
            let _ = editor.load_history(h);
        }
        eprintln!(
            "chat: type a message; Esc or Ctrl-C interrupts the agent's turn, Ctrl-D or /exit ends the chat"
        );
        Ok(Self {
            editor,
            history,
            slot,
            esc: None,
            typed_ahead: String::new(),
        })
    }
}

impl ChatInput for TerminalInput {
    fn next_message(&mut self) -> Option<String> {
        loop {
            let initial = std::mem::take(&mut self.typed_ahead);
            match self.editor.readline_with_initial("you> ", (&initial, "")) {
                Ok(line) => {
                    let line = line.trim().to_string();
                    if line.is_empty() {
                        continue;
                    }
                    if line == "/exit" || line == "/quit" {
                        return None;
                    }
                    let _ = self.editor.add_history_entry(line.as_str());
                    if let Some(h) = &self.history {
                        if let Some(dir) = h.parent() {
                            let _ = crate::paths::create_private_dir(dir);
                        }
                        let _ = self.editor.save_history(h);
                    }
                    return Some(line);
                }
                // Ctrl-C at the prompt clears the line, as in a shell.
                Err(ReadlineError::Interrupted) => continue,
                Err(ReadlineError::Eof) => return None,
                Err(e) => {
                    tracing::warn!("chat input failed: {e}");
                    return None;
                }
            }
        }
    }

    fn turn_started(&mut self, turn: &CancellationToken) {
        if let Ok(mut s) = self.slot.lock() {
            *s = Some(turn.clone());
        }
        self.esc = EscWatcher::start(turn.clone());
    }

    fn turn_ended(&mut self, interrupted: bool) {
        if let Ok(mut s) = self.slot.lock() {
            *s = None;
        }
        if let Some(esc) = self.esc.take() {
            self.typed_ahead = esc.stop();
        }
        if interrupted {
            eprintln!("(interrupted: the agent stopped; type a message to go on)");
        }
    }
}

/// Watches the terminal for a lone Esc while a turn runs.
struct EscWatcher {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<u8>>,
}

impl EscWatcher {
    fn start(turn: CancellationToken) -> Option<Self> {
        if !std::io::stdin().is_terminal() {
            return None;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::Builder::new()
            .name("seer-esc".into())
            .spawn(move || watch(turn, s))
            .ok()?;
        Some(Self { stop, handle })
    }

    /// Stops watching; returns the printable text typed meanwhile.
    fn stop(self) -> String {
        self.stop.store(true, Ordering::SeqCst);
        let bytes = self.handle.join().unwrap_or_default();
        String::from_utf8_lossy(&bytes)
            .chars()
            .filter(|c| !c.is_control())
            .collect()
    }
}

fn watch(turn: CancellationToken, stop: Arc<AtomicBool>) -> Vec<u8> {
    let mut typed = vec![];
    let stdin = std::io::stdin();
    let fd = stdin.as_fd();
    let Ok(saved) = termios::tcgetattr(fd) else {
        return typed;
    };
    let mut raw = saved.clone();
    // Keystrokes one by one, not echoed; Ctrl-C still raises SIGINT.
    raw.local_flags
        .remove(LocalFlags::ICANON | LocalFlags::ECHO);
    raw.control_chars[SpecialCharacterIndices::VMIN as usize] = 0;
    raw.control_chars[SpecialCharacterIndices::VTIME as usize] = 1;
    if termios::tcsetattr(fd, SetArg::TCSANOW, &raw).is_err() {
        return typed;
    }
    let mut byte = [0u8; 1];
    while !stop.load(Ordering::SeqCst) && !turn.is_cancelled() {
        match nix::unistd::read(fd, &mut byte) {
            Ok(1) if byte[0] == 0x1b => {
                // A lone Esc, not the start of an arrow key's sequence.
                if !matches!(nix::unistd::read(fd, &mut byte), Ok(1)) {
                    turn.cancel();
                }
            }
            Ok(1) => typed.push(byte[0]),
            Ok(_) => {}
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    let _ = termios::tcsetattr(fd, SetArg::TCSANOW, &saved);
    typed
}
