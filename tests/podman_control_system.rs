//! The Podman client's container control calls (stop, start, pause, unpause) against a
//! real Podman service on a temporary socket: each call's effect is read back through the
//! API, a pause and an unpause show in Podman's event stream, and refusals keep Podman's
//! reason.

mod common;

use common::podman::{Podman, PodmanService};
use podfs::error::Error;
use podfs::podman::{Client, ErrorKind, Event, EventFilter, EventStream, Outcome, Timeouts, discover};
use std::time::{Duration, Instant};

/// The state Podman reports for `name` now.
async fn state(client: &Client, name: &str) -> String {
    let c = client.container(name).await.unwrap_or_else(|e| panic!("{e}")).expect("the container exists");
    c.state
}

/// The next event, waiting at most 20 s.
async fn next_event(events: &mut EventStream) -> Event {
    tokio::time::timeout(Duration::from_secs(20), events.next())
        .await
        .expect("an event within 20 s")
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("the stream goes on")
}

on_each_podman!(stop_start_pause_and_unpause_a_real_container);
fn stop_start_pause_and_unpause_a_real_container(podman: Podman) {
    let test = "stop_start_pause_and_unpause_a_real_container";
    if !common::can_run(test, &["podman", "runc", "mkfs.btrfs", "losetup", "busybox"], true)
        || !podman.available(test)
    {
        return;
    }
    let service = PodmanService::start_on(podman, "overlay");
    service.import_busybox(&["localhost/busybox:ctl"]);
    let id = service.ok(&[
        "run",
        "-d",
        "--name",
        "ctl",
        "--network=none",
        "localhost/busybox:ctl",
        "sleep",
        "600",
    ]);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = Client::new(discover(Some(&service.url), &|_| None, true).unwrap(), Timeouts::LOOKUP);

    runtime.block_on(async {
        assert_eq!(state(&client, "ctl").await, "running");
        let filter = EventFilter { types: &["container"], actions: &["pause", "unpause"], since: None };
        let mut events = client.events(&filter).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(events.server_pid(), Some(service_pid(&service)), "SO_PEERCRED names the service");

        // Pause: frozen, and Podman says so in its events.
        client.pause("ctl").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(state(&client, "ctl").await, "paused");
        let paused = next_event(&mut events).await;
        assert_eq!((paused.kind.as_str(), paused.action.as_str()), ("container", "pause"));
        assert_eq!((paused.object(), paused.attribute("name")), (id.as_str(), Some("ctl")));

        // A second pause is refused with Podman's reason, and changes nothing.
        let again = client.pause("ctl").await.unwrap_err();
        assert_eq!(again.status(), Some(500), "{again}");
        assert!(again.to_string().contains("already paused"), "{again}");
        assert_eq!(Error::from(again).exit_code(), 3);
        assert_eq!(state(&client, "ctl").await, "paused");

        // Podman 4.3.1 does not stop a paused container.
        let refused = client.stop("ctl", Duration::from_secs(1)).await.unwrap_err();
        assert_eq!(refused.status(), Some(500), "{refused}");
        assert_eq!(state(&client, "ctl").await, "paused");

        client.unpause("ctl").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(state(&client, "ctl").await, "running");
        let unpaused = next_event(&mut events).await;
        assert_eq!((unpaused.action.as_str(), unpaused.object()), ("unpause", id.as_str()));
        let not_paused = client.unpause("ctl").await.unwrap_err();
        assert!(not_paused.to_string().contains("not paused"), "{not_paused}");

        // `sleep` as PID 1 ignores SIGTERM: the stop takes the grace period given, not
        // Podman's default of 10 s, then kills it.
        let started = Instant::now();
        assert_eq!(
            client.stop("ctl", Duration::from_secs(1)).await.unwrap_or_else(|e| panic!("{e}")),
            Outcome::Changed
        );
        let took = started.elapsed();
        assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(8), "the stop took {took:?}");
        assert_eq!(state(&client, "ctl").await, "exited");
        assert_eq!(client.stop("ctl", Duration::from_secs(1)).await.unwrap(), Outcome::AlreadySo);
        let not_running = client.pause("ctl").await.unwrap_err();
        assert!(not_running.to_string().contains("not running"), "{not_running}");
        assert_eq!(state(&client, "ctl").await, "exited");

        assert_eq!(client.start("ctl").await.unwrap_or_else(|e| panic!("{e}")), Outcome::Changed);
        assert_eq!(state(&client, "ctl").await, "running");
        assert_eq!(client.start(&id).await.unwrap(), Outcome::AlreadySo, "by id as well as by name");

        // Only the pause and the unpause were asked for: the stop and start are not in the stream.
        let quiet = tokio::time::timeout(Duration::from_millis(500), events.next()).await;
        assert!(quiet.is_err(), "no other event: {quiet:?}");
    });

    // What does not exist, or cannot be a name.
    runtime.block_on(async {
        let missing = client.stop("no-such-container", Duration::from_secs(1)).await.unwrap_err();
        assert_eq!(missing.status(), Some(404), "{missing}");
        let msg = missing.to_string();
        assert!(msg.contains("failed `containers/no-such-container/stop`: HTTP 404"), "{msg}");
        assert!(msg.contains("no such container") && msg.contains("podman ps --all"), "{msg}");
        assert!(client.container("no-such-container").await.unwrap().is_none());
        for bad in ["", "../ctl", "ctl/stop", "ctl?x=1"] {
            let e = client.start(bad).await.unwrap_err();
            assert!(matches!(e.kind(), ErrorKind::BadName(_)), "{bad:?}: {e}");
            assert_eq!(Error::from(e).exit_code(), 2);
        }
        assert_eq!(state(&client, "ctl").await, "running", "nothing else happened to it");
    });
}

/// The pid of the `podman system service` process that listens on the socket.
fn service_pid(service: &common::podman::PodmanService) -> u32 {
    let socket = service.socket.to_string_lossy().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let args: Vec<String> =
                    c.split(|b| *b == 0).map(|a| String::from_utf8_lossy(a).into()).collect();
                args.iter().any(|a| a == "service") && args.iter().any(|a| a.ends_with(&socket))
            })
        })
        .expect("the service's process")
}
