//! `serve`'s configuration watcher arms its watches before it says it is ready: a change
//! written the moment systemd would hear READY=1 is checked, never missed.

mod common;

use common::{LoopBtrfs, TempDir, TermOnDrop, bin, can_run};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn a_change_written_right_after_ready_is_checked() {
    if !can_run("a_change_written_right_after_ready_is_checked", &["mkfs.btrfs", "losetup"], true) {
        return;
    }
    let mut fs = LoopBtrfs::new("512M");
    let top = fs.mount("/", "");
    let dir = TempDir::new("serve-ready");
    let storage = dir.path().join("storage.conf");
    std::fs::write(&storage, "[storage]\ndriver = \"overlay\"\nrunroot = \"/run/containers/storage\"\n")
        .unwrap();
    // systemd's side of Type=notify: a datagram socket that hears READY=1.
    let notify_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let log = dir.path().join("serve.log");
    let child = bin()
        .args(["serve", "--no-events", "--socket"])
        .arg(dir.path().join("podfs.sock"))
        .arg("--root")
        .arg(top.join("podfs"))
        .arg("--storage-conf")
        .arg(&storage)
        .arg("--containers-conf")
        .arg(dir.path().join("containers.conf"))
        .env("NOTIFY_SOCKET", &notify_path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start serve");
    let _serve = TermOnDrop(child);

    let mut message = [0u8; 512];
    let n = notify.recv(&mut message).unwrap_or_else(|e| panic!("no READY=1 ({e}):\n{}", log_of(&log)));
    assert!(String::from_utf8_lossy(&message[..n]).contains("READY=1"));
    // At once, before the first check has had any time: an editor's write-and-rename.
    let swap = dir.path().join(".storage.conf.swp");
    std::fs::write(&swap, "[storage]\ndriver = \"btrfs\"\n\n[storage.options.btrfs]\nsize = \"10G\"\n")
        .unwrap();
    std::fs::rename(&swap, &storage).unwrap();

    let start = Instant::now();
    loop {
        let text = log_of(&log);
        let checked = text.lines().any(|l| {
            l.contains("checked the configuration after a change to storage.conf") && l.contains("errors=1")
        });
        if checked {
            assert!(text.lines().any(|l| l.contains("P203") && l.contains("line=5")), "{text}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the change was missed:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
