//! The pipe between real processes: handles crossing, shared sections, timeouts, a peer that
//! leaves, bad names. These run on Windows only (and under Wine: `scripts/wine-test`). The peer
//! is a second copy of this test binary, started on `child_entry`.

use std::io::{Read, Seek, Write};
use std::process::{Child, Command};
use std::time::Instant;

use super::super::shm::SharedRegion;
use super::super::Poller;
use super::*;
use crate::ipc::wire::SyncMode;

const CHILD_ENV: &str = "GEYSER_PIPE_TEST_CHILD";
const CONTENT: &[u8] = b"geyser: a handle that crossed a pipe";
const REGION: usize = 64 * 1024;

fn unique(tag: &str) -> String {
    format!("pipe-test-{tag}-{}", std::process::id())
}

fn spawn_child(name: &str, role: &str) -> Child {
    Command::new(std::env::current_exe().expect("current_exe"))
        .args([
            "--exact",
            "ipc::transport::pipe::tests::child_entry",
            "--nocapture",
        ])
        .env(CHILD_ENV, format!("{role}:{name}"))
        .spawn()
        .expect("spawn the child test process")
}

fn accept_within(server: &mut PipeServer, timeout: Duration) -> PipeConnection {
    let deadline = Instant::now() + timeout;
    let mut poller = Poller::with_capacity(1);
    loop {
        poller.clear();
        let ready = poller.wait(server, Duration::from_millis(50))[0];
        if ready {
            if let Some(conn) = server.accept(true).expect("accept") {
                return conn;
            }
        }
        assert!(Instant::now() < deadline, "no client within {timeout:?}");
    }
}

/// Not a test: the client process the tests below start.
#[test]
fn child_entry() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (role, name) = spec.split_once(':').expect("role:name");
    let mut conn = PipeConnection::connect(name).expect("connect");
    conn.check_peer(&PeerPolicy::SameUser).expect("same user");
    match role {
        "echo" => {
            // Receives a file handle, reads it, answers with what it read.
            let (msg, mut handles) = conn.recv(Some(Duration::from_secs(10))).expect("recv");
            assert!(
                matches!(msg, Message::SyncSetup { .. }),
                "got {}",
                msg.kind()
            );
            assert_eq!(handles.len(), 1);
            let mut file = std::fs::File::from(handles.remove(0));
            file.rewind().expect("rewind");
            let mut read = Vec::new();
            file.read_to_end(&mut read)
                .expect("read through the handle");
            conn.send(
                &Message::Bye {
                    reason: String::from_utf8_lossy(&read).into_owned(),
                },
                &[],
            )
            .expect("send");
            // Waits for the server to close the pipe.
            assert!(matches!(
                conn.recv(Some(Duration::from_secs(10))),
                Err(Error::PeerGone(_))
            ));
        }
        "region" => {
            // Maps a shared region the server sent, checks its bytes, answers in it.
            let (_, mut handles) = conn.recv(Some(Duration::from_secs(10))).expect("recv");
            let mut region = SharedRegion::open(handles.remove(0), REGION).expect("map");
            let slot = region.slot(0, REGION);
            assert_eq!(&slot[..CONTENT.len()], CONTENT);
            slot[REGION - 1] = 0xa5;
            conn.send(&Message::HostRingRequest, &[]).expect("send");
            assert!(matches!(
                conn.recv(Some(Duration::from_secs(10))),
                Err(Error::PeerGone(_))
            ));
        }
        "leave" => {
            conn.send(&Message::HostRingRequest, &[]).expect("send");
            // Exits without a word more: the server must see PeerGone.
        }
        other => panic!("unknown child role {other}"),
    }
}

#[test]
fn a_handle_crosses_and_reads_the_same_file() {
    let name = unique("echo");
    let mut server = PipeServer::bind(&name).expect("bind");
    // Wine 8 ignores FILE_FLAG_FIRST_PIPE_INSTANCE (a second server on the name is
    // created); Windows refuses it. `scripts/wine-test` says when we run under Wine.
    if std::env::var_os("GEYSER_WINE").is_none() {
        let second = PipeServer::bind(&name);
        assert!(
            matches!(second, Err(Error::AddressInUse { .. })),
            "{second:?}"
        );
    }
    let mut child = spawn_child(&name, "echo");
    let mut conn = accept_within(&mut server, Duration::from_secs(20));
    assert_eq!(
        conn.check_peer(&PeerPolicy::SameUser).unwrap().pid,
        child.id()
    );
    assert!(matches!(
        conn.check_peer(&PeerPolicy::Uids(vec![0])),
        Err(Error::Unsupported { .. })
    ));
    // Nothing sent yet: a short receive times out.
    assert!(matches!(
        conn.recv(Some(Duration::from_millis(100))),
        Err(Error::Timeout(_))
    ));
    let path = std::env::temp_dir().join(format!("{name}.bin"));
    let mut file = std::fs::File::create(&path).expect("temp file");
    file.write_all(CONTENT).expect("write");
    drop(file);
    let file = std::fs::File::open(&path).expect("open");
    let handle = OwnedHandle::from(file);
    // A wrong handle count is refused before anything is duplicated.
    assert!(matches!(
        conn.send(
            &Message::SyncSetup {
                sync: SyncMode::Timeline
            },
            &[]
        ),
        Err(Error::InvalidArgument { .. })
    ));
    use std::os::windows::io::AsHandle;
    conn.send(
        &Message::SyncSetup {
            sync: SyncMode::Timeline,
        },
        &[handle.as_handle()],
    )
    .expect("send with a handle");
    let (msg, handles) = conn.recv(Some(Duration::from_secs(20))).expect("answer");
    assert!(handles.is_empty());
    match msg {
        Message::Bye { reason } => assert_eq!(reason.as_bytes(), CONTENT),
        other => panic!("expected the echo, got {}", other.kind()),
    }
    drop(conn);
    assert!(child.wait().expect("child").success(), "child failed");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_shared_region_crosses_and_both_sides_see_each_others_writes() {
    let name = unique("region");
    let mut server = PipeServer::bind(&name).expect("bind");
    let mut child = spawn_child(&name, "region");
    let mut conn = accept_within(&mut server, Duration::from_secs(20));
    let mut region = SharedRegion::create("geyser-pipe-test", REGION).expect("region");
    region.slot(0, REGION)[..CONTENT.len()].copy_from_slice(CONTENT);
    use std::os::windows::io::AsHandle;
    conn.send(
        &Message::SyncSetup {
            sync: SyncMode::Timeline,
        },
        &[region.handle().as_handle()],
    )
    .expect("send the region");
    let (msg, _) = conn.recv(Some(Duration::from_secs(20))).expect("answer");
    assert!(
        matches!(msg, Message::HostRingRequest),
        "got {}",
        msg.kind()
    );
    assert_eq!(region.slot(0, REGION)[REGION - 1], 0xa5);
    drop(conn);
    assert!(child.wait().expect("child").success(), "child failed");
}

#[test]
fn a_peer_that_leaves_is_peer_gone() {
    let name = unique("leave");
    let mut server = PipeServer::bind(&name).expect("bind");
    let mut child = spawn_child(&name, "leave");
    let mut conn = accept_within(&mut server, Duration::from_secs(20));
    let (msg, _) = conn
        .recv(Some(Duration::from_secs(20)))
        .expect("first message");
    assert!(matches!(msg, Message::HostRingRequest));
    assert!(child.wait().expect("child").success(), "child failed");
    assert!(matches!(
        conn.recv(Some(Duration::from_secs(10))),
        Err(Error::PeerGone(_))
    ));
    assert!(matches!(
        conn.send(&Message::HostRingRequest, &[]),
        Err(Error::PeerGone(_))
    ));
}

#[test]
fn missing_endpoints_and_bad_names() {
    assert!(matches!(
        PipeConnection::connect(&unique("nobody")),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        PipeServer::bind("bad/name"),
        Err(Error::InvalidArgument { .. })
    ));
}
