//! One seeding process for the whole test binary: `localstack/seed
//! --serve`, asked a world per fixture over its standard input.
//!
//! # Why
//!
//! Every test seeds a world of its own (`world::seed`), and a seed run as
//! its own command starts Python, imports boto3 and makes some thirty
//! clients before its first call: about 0.9 s of a core, per test, on a
//! 2-core machine whose emulators are what the suite waits on. The served
//! seed pays that once; its answers are the command's (the same function
//! of `seed.py`), so a world seeded either way is the same world.
//!
//! A request is one JSON line (`{"id", "args"}`), its answer one JSON line
//! (`{"id", "ok", "world" | "error"}`), answered in any order: a reader
//! thread hands each answer to the caller waiting on its id. When the
//! process is gone (it failed to start, or died), every waiting caller
//! hears so and the seed is run as its own command, as before.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};

/// Callers waiting for their answer, by request id.
type Waiting = Arc<Mutex<HashMap<u64, Sender<Result<serde_json::Value, String>>>>>;

struct Served {
    /// Kept so the process lives as long as the binary.
    _child: Child,
    stdin: Mutex<ChildStdin>,
    waiting: Waiting,
    next: AtomicU64,
}

/// The served seed, started on first use; `None` when it cannot start.
fn served() -> Option<&'static Served> {
    static SERVED: OnceLock<Option<Served>> = OnceLock::new();
    SERVED.get_or_init(start).as_ref()
}

fn start() -> Option<Served> {
    let script = crate::world::repo_path("localstack/seed");
    let mut child = Command::new(&script)
        .arg("--serve")
        .env("DRCTL_ENDPOINTS_FILE", crate::world::endpoints_file())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| eprintln!("seeder: cannot start {}: {e}", script.display()))
        .ok()?;
    let stdin = child.stdin.take()?;
    let stdout = child.stdout.take()?;
    let waiting: Waiting = Arc::default();
    let answers = waiting.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
                eprintln!("seeder: not an answer: {line}");
                continue;
            };
            let Some(id) = msg["id"].as_u64() else {
                eprintln!("seeder: an answer with no id: {line}");
                continue;
            };
            let answer = match msg["ok"].as_bool() {
                Some(true) => Ok(msg["world"].clone()),
                _ => Err(msg["error"].as_str().unwrap_or("no error said").to_string()),
            };
            let waiter = lock(&answers).remove(&id);
            if let Some(w) = waiter {
                let _ = w.send(answer);
            }
        }
        // The process is gone: no answer will come to those waiting.
        lock(&answers).clear();
    });
    Some(Served {
        _child: child,
        stdin: Mutex::new(stdin),
        waiting,
        next: AtomicU64::new(1),
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What seeding with `args` (the command's arguments) answered:
/// `Some(Ok(world))`, `Some(Err(why))` when the seed failed, `None` when
/// no served seed is at hand (the caller runs the command itself).
pub(crate) fn seed(args: &[&str]) -> Option<Result<serde_json::Value, String>> {
    let s = served()?;
    let id = s.next.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = channel();
    lock(&s.waiting).insert(id, tx);
    let line = serde_json::json!({"id": id, "args": args}).to_string() + "\n";
    let sent = {
        let mut stdin = lock(&s.stdin);
        stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.flush())
    };
    if let Err(e) = sent {
        lock(&s.waiting).remove(&id);
        eprintln!("seeder: cannot send a request: {e}");
        return None;
    }
    // A gone process drops every sender: `recv` fails, the caller seeds
    // on its own.
    rx.recv().ok()
}
