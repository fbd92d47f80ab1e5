//! Issue 17: the CLI on a terminal, run under a pseudo-terminal (openpty(3); stdin, stdout and stderr all on
//! it, 100 columns): the table with colours, the progress lines, the confirmation prompt of an apply run (no:
//! nothing released; yes: released; `--yes`: no prompt), and `NO_COLOR`.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{ecs, inventory, Env, BIN, KEY_ID, MARK_KEY, NOW, NO_METADATA, SECRET};

const EXPIRED: (&str, &str) = ("expire-at", "2026-01-01");
const POLICY: &str = r#"
regions: [cn-hangzhou]
products: [ecs]
limits: { max_releases_per_run: 100, max_release_percent: 100 }
rules:
  - name: expired-by-tag
    filters: { expire_at_tag: expire-at }
    grace: 0
"#;

struct PtyRun {
    code: Option<i32>,
    /// Everything written to the terminal (stdout and stderr together, as a person sees them).
    screen: String,
}

/// A master/slave pseudo-terminal pair of `cols` columns.
fn openpty(cols: u16) -> (OwnedFd, OwnedFd) {
    let (mut master, mut slave) = (-1, -1);
    let size = libc::winsize { ws_row: 40, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: openpty writes two descriptors it opened into the two ints; name and termios may be null.
    let rc = unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), &size) };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened by openpty and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

/// Runs the binary on a fresh terminal; when the screen shows `prompt`, types `answer` and a newline.
fn on_terminal(env: &Env, args: &[&str], extra: &[(&str, &str)], answer: Option<(&str, &str)>) -> PtyRun {
    let policy = env.write("policy.yaml", POLICY);
    let (master, slave) = openpty(100);
    let mut cmd = Command::new(BIN);
    cmd.arg("run").arg("--policy").arg(&policy).args(args);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TERM", "xterm-256color")
        .env("JANITOR_ENDPOINT", &env.url)
        .env("JANITOR_NOW", NOW)
        .env("JANITOR_MARK_KEY", MARK_KEY)
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY_ID)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET)
        .env("JANITOR_ECS_METADATA_ENDPOINT", NO_METADATA);
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let fd = || Stdio::from(slave.try_clone().expect("dup"));
    cmd.stdin(fd()).stdout(fd()).stderr(fd());
    let mut child = cmd.spawn().expect("spawn");
    drop(cmd);
    drop(slave);
    let screen = Arc::new(Mutex::new(Vec::new()));
    let mut reader = std::fs::File::from(master.try_clone().expect("dup"));
    let seen = screen.clone();
    let drain = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // EIO once the child and every copy of the slave side are gone.
        while let Ok(n @ 1..) = reader.read(&mut buf) {
            seen.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let mut writer = std::fs::File::from(master);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut answered = answer.is_none();
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        if let (false, Some((prompt, reply))) = (answered, answer) {
            if String::from_utf8_lossy(&screen.lock().unwrap()).contains(prompt) {
                writer.write_all(format!("{reply}\n").as_bytes()).expect("type the answer");
                answered = true;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(writer);
    let _ = drain.join();
    let screen = String::from_utf8_lossy(&screen.lock().unwrap()).to_string();
    PtyRun { code, screen }
}

/// An SGR sequence (`ESC [ … m`): a colour or weight, unlike the cursor moves of the progress lines.
fn has_colour(s: &str) -> bool {
    s.split('\u{1b}').skip(1).any(|seq| {
        seq.strip_prefix('[').is_some_and(|rest| {
            let end = rest.find(|c: char| !(c.is_ascii_digit() || c == ';'));
            end.is_some_and(|i| rest[i..].starts_with('m'))
        })
    })
}

async fn fleet() -> Env {
    Env::start(&inventory(vec![
        ecs("i-old", "cn-hangzhou", "Stopped", "PostPaid", &[EXPIRED]),
        ecs("i-new", "cn-hangzhou", "Stopped", "PostPaid", &[]),
    ]))
    .await
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("join")
}

#[tokio::test]
async fn on_a_terminal_the_plan_is_a_coloured_table_with_progress() {
    let env = Arc::new(fleet().await);
    let e = env.clone();
    let run = blocking(move || on_terminal(&e, &[], &[], None)).await;
    assert_eq!(run.code, Some(0), "{}", run.screen);
    let s = &run.screen;
    assert!(s.contains("aliyun-janitor · dry run · account"), "{s}");
    assert!(s.contains("Would release · 1") && s.contains("i-old") && s.contains("Kept (no rule matched) · 1"), "{s}");
    assert!(s.contains("Totals · 2 instances in 1 scope"), "{s}");
    assert!(has_colour(s), "coloured by outcome: {s:?}");
    assert!(s.contains("✓ listing: 2 instances in 1 scope"), "progress of the listing: {s}");
    assert!(s.contains("✓ deciding: 2 instances") && s.contains("✓ dry run: 1 change"), "{s}");
    assert!(!s.contains("\"level\""), "no JSON logs on a terminal: {s}");
    assert!(serde_json::from_str::<Value>(s).is_err());

    let e = env.clone();
    let plain = blocking(move || on_terminal(&e, &[], &[("NO_COLOR", "1")], None)).await;
    assert_eq!(plain.code, Some(0), "{}", plain.screen);
    assert!(!has_colour(&plain.screen), "NO_COLOR: {:?}", plain.screen);
    assert!(plain.screen.contains("Would release · 1"));
}

#[tokio::test]
async fn an_apply_run_asks_first_and_a_no_releases_nothing() {
    let env = Arc::new(fleet().await);
    let e = env.clone();
    let no = blocking(move || on_terminal(&e, &["--apply"], &[], Some(("[y/N]", "n")))).await;
    assert_eq!(no.code, Some(1), "{}", no.screen);
    let s = &no.screen;
    assert!(s.contains("About to change account") && s.contains("regions:  cn-hangzhou"), "{s}");
    assert!(s.contains("release 1 instance:") && s.contains("ecs:cn-hangzhou/i-old"), "{s}");
    assert!(s.contains("not confirmed") && s.contains("nothing was changed"), "{s}");
    assert!(env.released_ids().is_empty(), "no: nothing released");
    assert_eq!(env.calls_of("DeleteInstances"), 0, "not even a dry run after a no");

    let e = env.clone();
    let yes = blocking(move || on_terminal(&e, &["--apply"], &[], Some(("[y/N]", "y")))).await;
    assert_eq!(yes.code, Some(0), "{}", yes.screen);
    assert!(yes.screen.contains("Released · 1") && yes.screen.contains("✓ release: 1 change"), "{}", yes.screen);
    assert_eq!(env.released_ids(), vec!["i-old".to_string()]);
}

#[tokio::test]
async fn yes_skips_the_prompt() {
    let env = Arc::new(fleet().await);
    let e = env.clone();
    let run = blocking(move || on_terminal(&e, &["--apply", "--yes"], &[], None)).await;
    assert_eq!(run.code, Some(0), "{}", run.screen);
    assert!(!run.screen.contains("About to change"), "{}", run.screen);
    assert_eq!(env.released_ids(), vec!["i-old".to_string()]);
}
